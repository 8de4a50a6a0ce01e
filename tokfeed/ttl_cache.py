"""Values a process remembers for a few seconds: the one cache for rows that nearly every
request reads and that rarely change (a partner's API key, the newest reranker's header, the
global cold-start centroid), so a stream of requests costs one read every few seconds.

``TTLCache(ttl)``: ``get(key, compute)`` is the value remembered for ``key`` while it is younger
than ``ttl`` seconds, else ``compute()``'s, remembered (``None`` too: "there is none" is an
answer worth remembering). ``ttl`` is a number or a function of none that returns one (read at
each ``get``, so a setting can change in tests); 0 or less remembers nothing.

Staleness is the contract: a change made elsewhere (another process, a Celery task) is seen
within ``ttl``. A process that writes the row itself calls ``forget()`` so it sees the change at
once; ``forget_all()`` forgets in every cache of the process (tests call it between tests, since a
rolled-back transaction says nothing to a cache).

Thread-safe. ``compute`` runs outside the lock: two threads that miss the same key at once both
read it (each answer is as fresh as the other), and no thread waits behind another's query. At
most ``max_entries`` keys are held; a full cache starts over rather than grow (a flood of made-up
keys must not grow memory). Plain Python, no Django: tested without a database.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

_all_caches: weakref.WeakSet[TTLCache] = weakref.WeakSet()


class TTLCache(Generic[V]):
    def __init__(self, ttl: float | Callable[[], float], *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, tuple[V, float]] = {}
        self._lock = threading.Lock()
        _all_caches.add(self)

    def ttl(self) -> float:
        return self._ttl() if callable(self._ttl) else self._ttl

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        ttl = self.ttl()
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[1] < ttl:
            return entry[0]
        value = compute()
        if ttl > 0:
            with self._lock:
                if len(self._entries) >= self._max_entries and key not in self._entries:
                    self._entries.clear()
                self._entries[key] = (value, now)
        return value

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def forget_all() -> None:
    """Forget every remembered value in this process."""
    for cache in list(_all_caches):
        cache.forget()
