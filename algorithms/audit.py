"""Reads the audit history of an algorithm's parts (states, edges, signal types) for the admin.

django-simple-history records every save and delete of those rows (with who and when); this
lists them newest first, each with what changed (old -> new; a state's params key by key), so
the algorithm's history page shows the whole machine's, not only the algorithm row's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .models import Edge, SignalType, State

#: Fields shown per part, in order.
_PARTS = (
    (State, "state", ("name", "batch_type", "params")),
    (Edge, "edge", ("start", "trigger", "end")),
    (SignalType, "signal type", ("name", "weight", "polarity")),
)
_ACTIONS = {"+": "added", "~": "changed", "-": "deleted"}


@dataclass(frozen=True)
class PartChange:
    when: datetime
    user: object
    part: str  # "state", "edge", "signal type"
    label: str  # which one, as it is after the change
    action: str  # "added", "changed", "deleted"
    changes: list[tuple[str, object, object]] = field(default_factory=list)  # (field, old, new)


def _label(part: str, record) -> str:
    return f"{record.start} --{record.trigger}--> {record.end}" if part == "edge" else record.name


def _changes(fields, old, new) -> list[tuple[str, object, object]]:
    changes = []
    for name in fields:
        before = getattr(old, name) if old is not None else None
        after = getattr(new, name)
        if name == "params" and isinstance(before, dict) and isinstance(after, dict):
            for key in dict.fromkeys([*before, *after]):
                if before.get(key) != after.get(key):
                    changes.append((f"params.{key}", before.get(key), after.get(key)))
        elif before != after:
            changes.append((name, before, after))
    return changes


def part_changes(algorithm_id: int, limit: int = 300) -> list[PartChange]:
    """The last ``limit`` changes to ``algorithm_id``'s states, edges and signal types."""
    found: list[PartChange] = []
    for model, part, fields in _PARTS:
        records = (model.history.filter(algorithm_id=algorithm_id).select_related("history_user")
                   .order_by("id", "history_date", "history_id"))
        previous = {}
        for record in records:
            before = previous.get(record.id)
            action = _ACTIONS.get(record.history_type, record.history_type)
            changes = [] if action == "deleted" else _changes(fields, before if action == "changed" else None, record)
            found.append(PartChange(record.history_date, record.history_user, part, _label(part, record), action, changes))
            previous[record.id] = record
    found.sort(key=lambda change: change.when, reverse=True)
    return found[:limit]
