"""Backpressure: each worker process does at most ``MAX_INFLIGHT`` units of work at once, and
refuses more at once with a retryable ``Overloaded`` rather than queueing it.

A unit of work is one feed event on the websocket (applied and acked; the refill it asks for
is a follow-up and its revision optional work, below) or one request to the HTTP fallback
(``/feed/events/``, ``/feed/batch/``) or the API (``/api/``). A request takes a slot or is
refused at once; a websocket event that finds none free waits for one at most
``ADMISSION_WAIT_MS`` (``acquire_within``: slots given back go to the events waiting, first come
first served), then is refused. A slot comes free every few milliseconds in a busy process, so a
brief burst is absorbed by waits of that order instead of becoming retry delays of hundreds of
milliseconds, while a process that stays full still refuses within that bound. The client is told
when to send the same thing again (``retry_after_ms``: ``OVERLOAD_RETRY_AFTER_MS`` times a random
factor in [1, 2), so clients refused together do not come back together; doubled for each
refusal a socket had in a row, up to 16 times: without it, at twice the capacity, resends every
second became the load). The event ids make the resend safe: an event is applied once, however
often it is sent.

Why a count of work in flight, not a queue's wait time: by Little's law a process that completes
``X`` units a second with ``L`` in flight keeps each ``L / X`` seconds, so bounding ``L`` bounds
the time an admitted event waits for its ack (plus, on a websocket, ``ADMISSION_WAIT_MS`` at
most for its slot), and it is known the moment an event arrives, with no clock to read and
nothing to tune per request. The work is mostly Python under one GIL, so a
process's throughput is about one core's, whatever its threads (DEPLOY.md, "Capacity", sizes it).

A follow-up (``start_follow_up``: the refill a websocket event asks for) is work an admitted unit
asked for that must be done: it takes no slot and is never refused. Its own thread bounds it (one
batch thread a process), and a viewer waiting for a refill sends no more views, so it throttles
itself; holding its event's slot while it waited for a thread made refills most of the slots
held, and acks were refused behind them (``bench/ws.py``: ~2 of 3.4 slots at 500 viewers).

Optional work (work whose loss costs quality, never correctness: re-ranking the cards a viewer
has not reached after a view) runs only in idle time: ``try_acquire_idle`` gives it a slot only
when nothing else is in flight in the process but the caller's own and no follow-up runs, and otherwise it is skipped
(counted in ``tokfeed_optional_work_skipped``), never queued. Under load a process so spends its
CPU on what was asked for (acks, refills), and an optional unit delays an ack by at most the
little its own run shares the GIL with one.

The count is per process (each uvicorn worker has its own): slots are taken and given back from
the event loop and from worker threads, hence the lock. ``MAX_INFLIGHT`` 0 turns it off (then
optional work always runs).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import threading

from django.conf import settings
from django.http import HttpRequest
from prometheus_client import Counter

from .errors import Overloaded

logger = logging.getLogger(__name__)

#: Paths whose requests take a slot (prefixes). Pages, static files, health and metrics do not:
#: a probe or an operator must get through an overloaded process.
ADMITTED_PATHS = ("/api/", "/feed/events/", "/feed/batch/")

REFUSED = Counter("tokfeed_overloaded", "Work refused at capacity (answered with a retry delay), by transport.",
                  ["transport"])
SKIPPED = Counter("tokfeed_optional_work_skipped",
                  "Optional work skipped because the process was busy (see tokfeed.capacity), by kind.", ["work"])


class Capacity:
    """A non-blocking counting semaphore whose size is read from settings at each admission."""

    def __init__(self):
        self._lock = threading.Lock()
        self.in_flight = 0
        self.follow_ups = 0
        # Events waiting for a slot (``acquire_within``), first come first served: (loop, future).
        self._waiters: collections.deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = collections.deque()

    def try_acquire(self) -> bool:
        limit = settings.MAX_INFLIGHT
        with self._lock:
            if limit and (self.in_flight >= limit or self._waiters):  # those waiting come first
                return False
            self.in_flight += 1
            return True

    async def acquire_within(self, wait_s: float) -> bool:
        """A slot, waiting up to ``wait_s`` seconds for one to be given back (in the order they
        asked); False if none came: refuse then. On an event loop (the websockets')."""
        if self.try_acquire():
            return True
        if wait_s <= 0:
            return False
        loop = asyncio.get_running_loop()
        granted = loop.create_future()
        with self._lock:
            self._waiters.append((loop, granted))
        try:
            async with asyncio.timeout(wait_s):
                await granted
            return True
        except TimeoutError:
            # Handed a slot just as the wait ran out: it is this caller's.
            return granted.done() and not granted.cancelled()
        except asyncio.CancelledError:  # the caller went away (its socket closed)
            if granted.done() and not granted.cancelled():
                self.release()  # handed a slot meanwhile: it goes on to the next
            raise
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._waiters.remove((loop, granted))

    def try_acquire_idle(self, work: str, held: int = 0) -> bool:
        """A slot for optional ``work`` only if nothing but the caller's own ``held`` slots is in
        flight and no follow-up runs (the process is otherwise idle); else False, counted as
        skipped."""
        limit = settings.MAX_INFLIGHT
        with self._lock:
            if not limit or (self.in_flight <= held and not self.follow_ups):
                self.in_flight += 1
                return True
        SKIPPED.labels(work).inc()
        return False

    def start_follow_up(self) -> None:
        """A follow-up begins: work an admitted unit asked for and that must be done (the refill
        a view asks for), run after that unit gave its slot back. It is never refused and takes
        no slot (the threads it runs on bound it); until ``end_follow_up``, waiting for a thread
        or running, the process is not idle, so optional work is skipped."""
        with self._lock:
            self.follow_ups += 1

    def end_follow_up(self) -> None:
        with self._lock:
            self.follow_ups -= 1

    def release(self) -> None:
        """Give a slot back: to the first event waiting for one (``acquire_within``), else free."""
        with self._lock:
            if self._waiters:
                loop, granted = self._waiters.popleft()
            else:
                self.in_flight -= 1
                return
        try:
            loop.call_soon_threadsafe(self._hand_over, granted)
        except RuntimeError:  # its loop closed meanwhile: nobody waits there any more
            self.release()

    def _hand_over(self, granted: asyncio.Future) -> None:
        """On the waiter's loop: the slot is its, unless it stopped waiting meanwhile (then the next's)."""
        if granted.done():
            self.release()
        else:
            granted.set_result(None)

    def refusal(self, transport: str, refused_before: int = 0) -> Overloaded:
        """The refusal to send, its delay doubled for each refusal this client had in a row."""
        REFUSED.labels(transport).inc()
        return Overloaded(retry_after_ms(refused_before))

    @contextlib.contextmanager
    def slot(self, transport: str):
        """Hold a slot for the block, or raise ``Overloaded`` at once."""
        if not self.try_acquire():
            raise self.refusal(transport)
        try:
            yield
        finally:
            self.release()


#: The most times a client's retry delay is doubled (500 ms base: at most 8-16 s).
MAX_DOUBLINGS = 4


def retry_after_ms(refused_before: int = 0) -> int:
    """Exponential backoff with jitter: under sustained overload clients come back ever less often,
    so refusals (cheap, not free) do not become the load themselves."""
    doublings = min(refused_before, MAX_DOUBLINGS)
    return round(settings.OVERLOAD_RETRY_AFTER_MS * 2 ** doublings * random.uniform(1, 2))


#: This process's capacity, shared by its websockets and its HTTP requests.
CAPACITY = Capacity()


def is_admitted_path(request: HttpRequest) -> bool:
    return request.path.startswith(ADMITTED_PATHS)
