"""Reading the neutral format (items and events JSON lines) into index arrays.

Items and users get dense indices in order of first appearance. Per user the dataset keeps the
label-1 history items in the order first engaged (``history``), every item the history touched
whatever its label (``history_seen``: never drawn as a negative), and the test rows (items and
labels). Anything malformed stops the load with ``DatasetError`` naming the file and line.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPLITS = ("history", "test")


class DatasetError(ValueError):
    """A file of the neutral format that cannot be read as one: the message names where."""


@dataclass
class Dataset:
    item_ids: list[str]
    texts: list[str]  # stripped; "" when the item has no usable text
    user_ids: list[str]
    history: list[np.ndarray]  # per user: label-1 history items, first engagement first
    history_seen: list[np.ndarray]  # per user: every item with a history event, any label
    test_items: list[np.ndarray]  # per user: the test rows' items (empty when not tested)
    test_labels: list[np.ndarray]  # per user: the test rows' labels (int8)
    history_events: int
    test_rows_in_history: int  # test rows whose item the user already engaged with in history

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def tested_users(self) -> np.ndarray:
        return np.array([u for u, items in enumerate(self.test_items) if len(items)], dtype=np.int64)


def _lines(path: Path, what: str) -> Iterator[tuple[int, dict]]:
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield number, record


def _key(record: dict, field: str, path: Path, number: int) -> str:
    value = record.get(field)
    # bool is an int in Python, and never an id.
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise DatasetError(f"{path}:{number}: {field!r} must be a non-empty string or an integer, got {value!r}")
    return str(value)


def load_items(path: Path) -> tuple[list[str], list[str]]:
    """(ids, texts) of an items file; a duplicate id or a missing text is an error."""
    path = Path(path)
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    for number, record in _lines(path, "items"):
        item = _key(record, "id", path, number)
        text = record.get("text")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise DatasetError(f"{path}:{number}: 'text' must be a string, got {type(text).__name__}")
        if item in seen:
            raise DatasetError(f"{path}:{number}: item {item!r} already appeared on line {seen[item]}")
        seen[item] = number
        ids.append(item)
        texts.append(text.strip())
    if not ids:
        raise DatasetError(f"{path}: no items")
    return ids, texts


def load_dataset(items_path: Path, events_path: Path) -> Dataset:
    item_ids, texts = load_items(items_path)
    item_index = {item: i for i, item in enumerate(item_ids)}
    events_path = Path(events_path)
    user_index: dict[str, int] = {}
    history: list[dict[int, None]] = []  # dicts keep first-insertion order and dedupe
    seen: list[set[int]] = []
    tests: list[dict[int, int]] = []
    history_events = 0
    for number, record in _lines(events_path, "events"):
        user = _key(record, "user", events_path, number)
        item_key = _key(record, "item", events_path, number)
        item = item_index.get(item_key)
        if item is None:
            raise DatasetError(f"{events_path}:{number}: item {item_key!r} is not in {items_path}")
        label = record.get("label")
        if label not in (0, 1) or isinstance(label, bool):
            raise DatasetError(f"{events_path}:{number}: 'label' must be 1 or 0, got {label!r}")
        split = record.get("split")
        if split not in SPLITS:
            raise DatasetError(f"{events_path}:{number}: 'split' must be 'history' or 'test', got {split!r}")
        u = user_index.get(user)
        if u is None:
            u = user_index[user] = len(user_index)
            history.append({})
            seen.append(set())
            tests.append({})
        if split == "history":
            history_events += 1
            seen[u].add(item)
            if label == 1:
                history[u].setdefault(item, None)
        else:
            if item in tests[u]:
                raise DatasetError(f"{events_path}:{number}: user {user!r} already has a test row for item {item_key!r}")
            tests[u][item] = label
    if not user_index:
        raise DatasetError(f"{events_path}: no events")
    if not any(tests):
        raise DatasetError(f"{events_path}: no test rows (split 'test'): nothing to score")
    in_history = sum(1 for u, rows in enumerate(tests) for item in rows if item in history[u])
    return Dataset(
        item_ids=item_ids,
        texts=texts,
        user_ids=list(user_index),
        history=[np.fromiter(h, dtype=np.int64, count=len(h)) for h in history],
        history_seen=[np.fromiter(sorted(s), dtype=np.int64, count=len(s)) for s in seen],
        test_items=[np.fromiter(t, dtype=np.int64, count=len(t)) for t in tests],
        test_labels=[np.fromiter(t.values(), dtype=np.int8, count=len(t)) for t in tests],
        history_events=history_events,
        test_rows_in_history=in_history,
    )
