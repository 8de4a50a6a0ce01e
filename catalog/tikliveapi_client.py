"""Fetching TikLiveAPI responses into a directory that ``catalog.tikliveapi`` imports.

``Client.get`` makes one call: ``X-Api-Key`` header, a timeout, retries with exponential backoff
(honouring ``Retry-After``) on timeouts, dropped connections, 429 and 5xx, and a request budget
that every attempt spends (``BudgetSpent`` once it is gone). Other 4xx answers fail at once.

``fetch`` saves each response as ``DIR/<endpoint>/<key>.<page>.json`` and records it in
``DIR/.tikliveapi-state.json``; a run that stops (budget spent, service down) is resumed by
running it again: what the state file lists is read from disk, not fetched again. The request
parameters (``username``; ``unique_id``, ``count``, ``cursor``; ``video_id``, ``count``,
``cursor``) and the paging keys (``cursor``, ``hasMore``) are the service's.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from .tikliveapi import COMMENTS, POSTS, USERINFO, ShapeError, comments_of, posts_of, unwrap

STATE_FILE = ".tikliveapi-state.json"
#: Answers worth asking again: rate limited, or the service (or a proxy before it) failing.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class FetchError(RuntimeError):
    """A call failed for good (after its retries, or at once for a client error)."""


class BudgetSpent(FetchError):
    """The request budget is spent; run again (with a new budget) to resume."""


@dataclass
class Client:
    base_url: str
    api_key: str
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    budget: int = 200
    sleep: Callable[[float], None] = time.sleep
    requests_made: int = 0

    def get(self, endpoint: str, params: dict) -> object:
        """The decoded JSON that ``GET {base_url}/{endpoint}/?params`` answers."""
        url = f"{self.base_url.rstrip('/')}/{endpoint}/?{urlencode(params)}"
        request = Request(url, headers={"X-Api-Key": self.api_key, "Accept": "application/json"})
        for attempt in range(self.retries + 1):
            if self.requests_made >= self.budget:
                raise BudgetSpent(f"the request budget ({self.budget}) is spent; run again to resume")
            self.requests_made += 1
            retry_after = None
            try:
                with urlopen(request, timeout=self.timeout_s) as response:
                    body = response.read()
            except HTTPError as exc:
                if exc.code not in RETRYABLE_STATUS:
                    detail = "the API key was refused" if exc.code in (401, 403) else exc.reason
                    raise FetchError(f"/{endpoint}/ answered HTTP {exc.code} ({detail})") from None
                failure, retry_after = f"HTTP {exc.code}", _retry_after(exc.headers.get("Retry-After"))
            except (URLError, TimeoutError, ConnectionError, OSError) as exc:
                failure = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            else:
                try:
                    return json.loads(body)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    raise FetchError(f"/{endpoint}/ answered something that is not JSON") from None
            if attempt == self.retries:
                raise FetchError(f"/{endpoint}/ failed {self.retries + 1} times, last: {failure}")
            wait = min(self.max_backoff_s, self.backoff_s * 2**attempt)
            self.sleep(min(self.max_backoff_s, max(wait, retry_after or 0.0)))
        raise AssertionError("unreachable")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


@dataclass
class FetchReport:
    fetched: int = 0  # responses fetched by this run
    reused: int = 0  # responses an earlier run had saved
    errors: list[str] = field(default_factory=list)
    stopped: str = ""  # why the run stopped early (budget spent), "" when it did not


class _State:
    """What was fetched: ``{"fetched": {request key: file relative to the directory}}``."""

    def __init__(self, root: Path):
        self.path = root / STATE_FILE
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {"fetched": {}}

    def saved(self, key: str) -> str | None:
        return self.data["fetched"].get(key)

    def record(self, key: str, relative: str) -> None:
        self.data["fetched"][key] = relative
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(temporary, self.path)  # a crash leaves the old state or the new, never half


def fetch(root: str | Path, client: Client, handles: Sequence[str], *, post_pages: int = 1,
          comment_videos: int = 10, comment_pages: int = 1, page_size: int = 30) -> FetchReport:
    """Fetch each handle's profile, ``post_pages`` pages of posts and ``comment_pages`` pages of
    comments on its ``comment_videos`` newest posts into ``root``; resumable (module doc)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    state = _State(root)
    report = FetchReport()

    def once(endpoint: str, params: dict, name: str) -> object:
        key = f"{endpoint}?{urlencode(sorted(params.items()))}"
        saved = state.saved(key)
        if saved is not None and (root / saved).exists():
            report.reused += 1
            return json.loads((root / saved).read_text(encoding="utf-8"))
        payload = client.get(endpoint, params)
        relative = f"{endpoint}/{_SAFE.sub('_', name)}.json"
        (root / endpoint).mkdir(exist_ok=True)
        (root / relative).write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        state.record(key, relative)
        report.fetched += 1
        return payload

    def pages(endpoint: str, params: dict, name: str, count: int, items_of) -> list:
        items, cursor = [], 0
        for page in range(count):
            payload = once(endpoint, {**params, "count": page_size, "cursor": cursor}, f"{name}.{page}")
            items += items_of(payload)
            body = unwrap(payload, endpoint)
            if not (body.get("hasMore") or body.get("has_more")) or body.get("cursor") in (None, cursor):
                break
            cursor = body["cursor"]
        return items

    try:
        for handle in handles:
            try:
                once(USERINFO, {"username": handle}, handle)
                videos = pages(POSTS, {"unique_id": handle}, handle, post_pages, posts_of)
                ids = [str(v.get("video_id") or v.get("aweme_id")) for v in videos if isinstance(v, dict)][:comment_videos]
                for video_id in ids:
                    pages(COMMENTS, {"video_id": video_id}, video_id, comment_pages, comments_of)
            except (FetchError, ShapeError) as exc:
                if isinstance(exc, BudgetSpent):
                    raise
                report.errors.append(f"@{handle}: {exc}")
    except BudgetSpent as exc:
        report.stopped = str(exc)
    return report
