"""The feed's websocket (``/ws/feed/``): view and action events in, acks, revised cards and
batches out.

The protocol is in ``feed.events``. The viewer's feed session comes from the Django session
(the page view stored it there), so the socket needs no token of its own; origins are checked
in ``tokfeed.asgi``.

Each connection handles its messages one at a time, so a viewer's events reach the state
machine in the order they were sent; the refill an event asks for is served in the background
after its ack (one refill after another per socket), so the viewer's next events are acked
meanwhile rather than queued behind a batch. The database work runs in small thread pools of our
own rather than on the single thread Channels uses by default, so one viewer's batch (an ANN
query) does not hold up every other viewer's acks.

One feed session never holds more than one thread of each pool, however many sockets (tabs,
devices) it has open: its sockets take turns (``SessionTurns``: ``EVENT_TURNS``, ``BATCH_TURNS``)
before they take a thread. A session whose row is locked by other work then holds one thread
until its lock wait runs out (``FEED_LOCK_TIMEOUT_MS``, answered with a retryable error), and
other viewers' events go on.

With the channel layer down (Redis unreachable) a socket cannot work: its handshake is refused,
with one logged error per outage (``tokfeed.channel_layer.CHANNEL_LAYER_HEALTH``), so the client
falls back to HTTP instead of reconnecting in a loop; it comes back to the socket when the layer
does.

Each socket joins its feed session's group in the event stream (``services.session_group``): the
use cases publish every applied signal and served batch there, whichever transport carried it,
and the socket forwards them as ``state`` frames, but those it caused itself (its own events'
acks and batches already told its tab).

Backpressure: each event holds one of the process's slots (``tokfeed.capacity``) from its
admission until its ack is sent; past ``MAX_INFLIGHT`` it waits for a slot at most
``ADMISSION_WAIT_MS``, then is refused with a retryable ``overloaded`` error frame carrying
``retry_after_ms``, and the client sends the same event again after that delay. The refill an
admitted event asks for is a follow-up (``CAPACITY.start_follow_up``): it holds no slot, waiting
for the batch thread or running (the process's one batch thread bounds it, and a viewer waiting
for its refill sends no more views), so acks are not refused because refills queue. The revision after a
view is optional work: it runs only when the process has nothing else in flight and no refill
under way (``CAPACITY.try_acquire_idle``), else it is skipped; the next view's revision, if it
runs, ranks with every view up to it.

``MonitorConsumer`` (``/ws/admin/monitor/``, staff only) forwards the monitor group's events to
the admin's live monitor as table rows for htmx to insert.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.db import close_old_connections
from django.template.loader import render_to_string

from tokfeed.capacity import CAPACITY
from tokfeed.channel_layer import CHANNEL_LAYER_HEALTH
from tokfeed.errors import Overloaded, ServiceError

from . import events, selectors
from .client_events import InvalidEvent, parse_event
from .services import MONITOR_GROUP, SessionNotFound, session_group

logger = logging.getLogger(__name__)

#: Close codes (4000-4999 are the application's): the client must reload the page to go on.
NO_FEED_SESSION = 4401


# The database work is mostly Python under one GIL, so a few threads suffice: enough that some
# compute while others wait on PostgreSQL, or on a busy session's lock. Batches (an ANN query and
# a render, a few times an ack's work) have a thread of their own, so acks never queue behind them.
# One: a process builds one batch at a time (refills and revisions), so a burst of refills takes at
# most one core's worth of the GIL and of PostgreSQL per worker and leaves the rest to acks. With
# two, at 500 viewers (bench/ws.py, make serve x2) the refills after the viewers' first batch
# built four at once on two cores, and acks queued for the cores behind them (p95 until acked
# ~110 ms, ~55-72 ms with one; refills came as fast: they queue for the CPU either way).
EVENT_THREADS = ThreadPoolExecutor(4, thread_name_prefix="feed-events")
BATCH_THREADS = ThreadPoolExecutor(1, thread_name_prefix="feed-batches")


class SessionTurns:
    """One lock per feed session with open sockets in this process, shared by those sockets: a
    session takes one thread of a pool at a time."""

    def __init__(self):
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: collections.Counter[str] = collections.Counter()

    def join(self, session_id: str) -> None:
        self._users[session_id] += 1
        self._locks.setdefault(session_id, asyncio.Lock())

    def leave(self, session_id: str) -> None:
        self._users[session_id] -= 1
        if self._users[session_id] <= 0:
            del self._users[session_id]
            self._locks.pop(session_id, None)

    def turn(self, session_id: str) -> asyncio.Lock:
        return self._locks[session_id]


EVENT_TURNS = SessionTurns()  # for EVENT_THREADS
BATCH_TURNS = SessionTurns()  # for BATCH_THREADS


def in_worker_thread(func, executor=None):
    """``func`` made awaitable, run in the thread pool with Django's connection hygiene.

    As Channels' ``database_sync_to_async`` does, stale or broken connections are dropped before
    and after the call, but from inside it: in the consumer tests (asgiref 3.13), Channels' own
    cleanup left the workers' connections open, and this does not.
    """
    def with_fresh_connections(*args, **kwargs):
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(with_fresh_connections, thread_sensitive=False, executor=executor or EVENT_THREADS)


class WorkerThreadConsumer(AsyncWebsocketConsumer):
    """A websocket consumer whose database work all runs in ``in_worker_thread`` (which drops
    stale connections itself), so its messages are dispatched without Channels' per-message
    ``aclose_old_connections``: a hop to the process's one thread-sensitive thread and back for
    every frame and every group message, which every socket of the process queues for (and
    which, under load, waits for the GIL twice)."""

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)


def _feed_session_of(django_session) -> str | None:
    session_id = django_session.get(selectors.FEED_SESSION_KEY)
    return session_id if selectors.feed_session_exists(session_id) else None


#: How many of its own event ids a socket remembers, to know the state frames it caused.
OWN_EVENTS_REMEMBERED = 256


class FeedConsumer(WorkerThreadConsumer):
    session_id: str | None = None
    group: str | None = None
    refusing_until = 0.0  # time.monotonic() until which this socket's events are refused (overloaded)
    refused_in_a_row = 0  # refusals since this socket's last admitted event: its delay doubles with each

    async def connect(self):
        session_id = await in_worker_thread(_feed_session_of)(self.scope["session"])
        if session_id is None:
            await self.accept()
            await self._send_frame(events.error_frame(None, "no feed session: open the feed page first",
                                                      code="no_session"))
            await self.close(code=NO_FEED_SESSION)
            return
        group = session_group(session_id)
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:  # the layer's own errors (redis, OSError...) differ by backend
            CHANNEL_LAYER_HEALTH.failed(exc)
            await self.close()  # before accepting: the handshake is refused
            return
        CHANNEL_LAYER_HEALTH.worked()
        self.session_id, self.group = session_id, group
        EVENT_TURNS.join(session_id)
        BATCH_TURNS.join(session_id)
        # Batches sent on this connection: a refill request repeated before its batch arrived
        # is answered once, and the stream's news of them is not forwarded back.
        self.batches_sent: set[int] = set()
        # This socket's latest events: the stream's news of their signals is not forwarded back.
        self.own_events: collections.deque[str] = collections.deque(maxlen=OWN_EVENTS_REMEMBERED)
        self.refills: set[asyncio.Task] = set()  # served in the background, one after another
        await self.accept()

    async def disconnect(self, code):
        if self.group is None:
            return
        for refill in self.refills:  # its batch stays served: asked for again after a reconnect, the same one comes
            refill.cancel()
        EVENT_TURNS.leave(self.session_id)
        BATCH_TURNS.leave(self.session_id)
        with contextlib.suppress(Exception):  # a layer gone down has forgotten the group anyway
            await self.channel_layer.group_discard(self.group, self.channel_name)
        self.group = None

    async def receive(self, text_data=None, bytes_data=None):
        if self.session_id is None:
            return
        try:
            event = parse_event(text_data if text_data is not None else bytes_data)
        except InvalidEvent as exc:
            await self._send_frame(events.error_frame(exc.event_id, exc.message, exc.field, code=exc.code))
            return
        if (refusal := await self._refuse_past_capacity()) is not None:
            await self._send_frame(events.service_error_frame(event.event_id, refusal))
            return
        try:
            ack = await self._apply(event)
        finally:
            CAPACITY.release()  # acked (or refused by the use case): the slot is free
        if ack is None:
            return
        if event.type == "view" and not ack["duplicate"]:
            await self._send_revision(event, ack)
        if event.wants_batch:
            CAPACITY.start_follow_up()  # now, so that the next event's revision is skipped until it is sent
            refill = asyncio.create_task(self._send_batch(event))
            self.refills.add(refill)
            refill.add_done_callback(self.refills.discard)

    async def _refuse_past_capacity(self) -> Overloaded | None:
        """Take one of the process's slots for this event, waiting for one at most
        ``ADMISSION_WAIT_MS``, or the refusal to send.

        A socket refused once refuses every event it sends until that delay has passed: the
        client holds its outbox back as long, then resends it in order, so events sent before
        it heard of the refusal are not applied before the refused one. Each refusal in a row
        doubles the next one's delay (``tokfeed.capacity.retry_after_ms``)."""
        if time.monotonic() < self.refusing_until:  # sent before the client heard: what is left of the same delay
            return Overloaded(math.ceil((self.refusing_until - time.monotonic()) * 1000))
        if await CAPACITY.acquire_within(settings.ADMISSION_WAIT_MS / 1000):
            self.refused_in_a_row = 0
            return None
        refusal = CAPACITY.refusal("websocket", self.refused_in_a_row)
        self.refused_in_a_row += 1
        self.refusing_until = time.monotonic() + refusal.retry_after_ms / 1000
        return refusal

    async def _apply(self, event) -> dict | None:
        """Apply the event and send its ack; None (its error frame sent) when it was not applied."""
        # Remembered before it is applied: the stream's news of it is handled after this returns
        # (a consumer handles its messages one at a time), so it always finds it here.
        self.own_events.append(str(event.event_id))
        try:
            async with EVENT_TURNS.turn(self.session_id):
                ack = await in_worker_thread(events.apply_event)(self.session_id, event)
        except SessionNotFound as exc:
            await self._send_frame(events.service_error_frame(event.event_id, exc))
            await self.close(code=NO_FEED_SESSION)
            return None
        except ServiceError as exc:
            await self._send_frame(events.service_error_frame(event.event_id, exc))
            return None
        except Exception:
            logger.exception("feed event %s on session %s failed", event.event_id, self.session_id)
            await self._send_frame(events.error_frame(event.event_id, "server error; send it again", code="error",
                                                      retry_after_ms=events.SERVER_ERROR_RETRY_MS))
            return None
        await self._send_frame(ack)
        return ack

    async def _send_revision(self, event, ack):
        """After a view's ack: the cards the viewer has not reached, re-ranked with that view, as
        one frame that swaps them in (``events.revision_after``). Before the batch a refill asks
        for, so that batch comes after them. Optional work: skipped unless the process has nothing
        else in flight (``CAPACITY.try_acquire_idle``). A failure costs only the re-ranking: the
        cards held stay valid, so it is logged, not sent."""
        if not CAPACITY.try_acquire_idle("revision"):
            return
        try:
            async with BATCH_TURNS.turn(self.session_id):
                html = await in_worker_thread(events.revision_after, BATCH_THREADS)(self.session_id, event, ack)
        except ServiceError as exc:
            logger.warning("revising the cards after event %s on session %s: %s", event.event_id, self.session_id,
                           exc.message)
            return
        except Exception:
            logger.exception("revising the cards after event %s on session %s failed", event.event_id, self.session_id)
            return
        finally:
            CAPACITY.release()
        if html:
            await self.send(text_data=html)

    async def _send_batch(self, event):
        """The refill ``event`` asked for, after its ack (a follow-up, started by ``receive``, ended
        here once the batch is sent). A socket's refills take the session's batch turn one after
        another, so a request repeated before its batch was sent is answered once."""
        try:
            async with BATCH_TURNS.turn(self.session_id):
                if event.batch is not None and event.batch + 1 in self.batches_sent:
                    return
                number, html = await in_worker_thread(self._render_batch_after, BATCH_THREADS)(event.batch)
                if number not in self.batches_sent:
                    self.batches_sent.add(number)
                    await self.send(text_data=html)
        except ServiceError as exc:
            await self._send_frame(events.service_error_frame(event.event_id, exc))
        except Exception:
            logger.exception("serving the batch after %s on session %s failed", event.batch, self.session_id)
            await self._send_frame(events.error_frame(event.event_id, "could not serve the next batch", code="error",
                                                      retry_after_ms=events.SERVER_ERROR_RETRY_MS))
        finally:
            CAPACITY.end_follow_up()

    def _render_batch_after(self, after):
        number, cards, state = events.batch_after(self.session_id, after)
        return number, events.render_cards(cards, state, oob=True)

    async def feed_state(self, message):
        """The session's state changed (a signal applied, a batch served), by whatever transport:
        keep this tab's overlay current, unless this socket caused it (its tab knows already)."""
        if message.get("batch") is not None and self.refills:
            # Perhaps this socket's own refill, committed but not yet sent: known once it is.
            await asyncio.wait(set(self.refills))
        if message.get("event_id") in self.own_events or message.get("batch") in self.batches_sent:
            return
        await self._send_frame({"type": "state", "state": message["state"], "signal": message["signal"]})

    async def _send_frame(self, frame: dict):
        await self.send(text_data=events.dumps(frame))


def _is_staff(scope) -> bool:
    """Whether the socket's Django session is an active staff user's (the admin's login)."""
    # Django's own check of a request's session (the password hash included), given the
    # socket's session: run in our worker threads, whose connections are cleaned up.
    user = auth.get_user(SimpleNamespace(session=scope["session"]))
    return bool(user.is_active and user.is_staff)


class MonitorConsumer(WorkerThreadConsumer):
    """The admin's live monitor: every signal and batch the feed publishes, as a table row.

    Staff only (the admin's session cookie); others' handshakes are refused. It only listens:
    anything a client sends is ignored. Each row is HTML for htmx's websocket extension, which
    inserts it at the top of ``#monitor-events``.
    """

    listening = False

    async def connect(self):
        if not await in_worker_thread(_is_staff)(self.scope):
            await self.close()
            return
        try:
            await self.channel_layer.group_add(MONITOR_GROUP, self.channel_name)
        except Exception as exc:
            CHANNEL_LAYER_HEALTH.failed(exc)
            await self.close()
            return
        CHANNEL_LAYER_HEALTH.worked()
        self.listening = True
        await self.accept()

    async def disconnect(self, code):
        if self.listening:
            with contextlib.suppress(Exception):
                await self.channel_layer.group_discard(MONITOR_GROUP, self.channel_name)
            self.listening = False

    async def receive(self, text_data=None, bytes_data=None):
        pass

    async def monitor_event(self, message):
        await self.send(text_data=render_to_string("admin/feed/monitor/_event.html", {"event": message}))
