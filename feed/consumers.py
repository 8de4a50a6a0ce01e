"""The feed's websocket (``/ws/feed/``): view and action events in, acks and batches out.

The protocol is in ``feed.events``. The viewer's feed session comes from the Django session
(the page view stored it there), so the socket needs no token of its own; origins are checked
in ``tokfeed.asgi``.

Each connection handles its messages one at a time, so a viewer's events reach the state
machine in the order they were sent. The database work runs in small thread pools of our own
rather than on the single thread Channels uses by default, so one viewer's batch (an ANN query)
does not hold up every other viewer's acks.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import close_old_connections

from . import events, selectors
from .forms import InvalidEvent, parse_event
from .services import FeedError, SessionNotFound

logger = logging.getLogger(__name__)

#: Close codes (4000-4999 are the application's): the client must reload the page to go on.
NO_FEED_SESSION = 4401


# The database work is mostly Python (the ORM) under one GIL, so a few threads suffice: two, so
# one call computes while another waits on PostgreSQL. Batches (an ANN query and a render, a few
# times an ack's work) have threads of their own, so acks never queue behind them.
EVENT_THREADS = ThreadPoolExecutor(2, thread_name_prefix="feed-events")
BATCH_THREADS = ThreadPoolExecutor(2, thread_name_prefix="feed-batches")


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


def _feed_session_of(django_session) -> str | None:
    session_id = django_session.get(selectors.FEED_SESSION_KEY)
    return session_id if selectors.feed_session_exists(session_id) else None


def group_name(session_id) -> str:
    """The channel-layer group of every socket open on one feed session (tabs, devices)."""
    return f"feed-session.{session_id}"


class FeedConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.session_id = await in_worker_thread(_feed_session_of)(self.scope["session"])
        await self.accept()
        if self.session_id is None:
            await self._send_frame(events.error_frame(None, "no feed session: open the feed page first"))
            await self.close(code=NO_FEED_SESSION)
            return
        # Batches sent on this connection: a refill request repeated before its batch arrived
        # is answered once.
        self.batches_sent: set[int] = set()
        self.group = group_name(self.session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if self.session_id is None:
            return
        try:
            event = parse_event(text_data if text_data is not None else bytes_data)
        except InvalidEvent as exc:
            await self._send_frame(events.error_frame(exc.event_id, exc.message, exc.field))
            return
        try:
            ack = await in_worker_thread(events.apply_event)(self.session_id, event)
        except SessionNotFound as exc:
            await self._send_frame(events.error_frame(event.event_id, exc.message))
            await self.close(code=NO_FEED_SESSION)
            return
        except FeedError as exc:
            await self._send_frame(events.error_frame(event.event_id, exc.message, exc.field))
            return
        except Exception:
            logger.exception("feed event %s on session %s failed", event.event_id, self.session_id)
            await self._send_frame(events.error_frame(event.event_id, "server error; send it again", retry=True))
            return
        await self._send_frame(ack)
        if ack["signal"] and not ack["duplicate"]:
            await self.channel_layer.group_send(self.group, {
                "type": "feed.state", "state": ack["state"], "signal": ack["signal"], "sender": self.channel_name,
            })
        if event.wants_batch:
            await self._send_batch(event)

    async def _send_batch(self, event):
        if event.batch is not None and event.batch + 1 in self.batches_sent:
            return
        try:
            number, html = await in_worker_thread(self._render_batch_after, BATCH_THREADS)(event.batch)
        except Exception:
            logger.exception("serving the batch after %s on session %s failed", event.batch, self.session_id)
            await self._send_frame(events.error_frame(event.event_id, "could not serve the next batch", retry=True))
            return
        if number not in self.batches_sent:
            self.batches_sent.add(number)
            await self.send(text_data=html)

    def _render_batch_after(self, after):
        number, cards, state = events.batch_after(self.session_id, after)
        return number, events.render_cards(cards, state, oob=True)

    async def feed_state(self, message):
        """A signal recorded on another socket of this feed session: keep this one's overlay current."""
        if message["sender"] != self.channel_name:
            await self._send_frame({"type": "state", "state": message["state"], "signal": message["signal"]})

    async def _send_frame(self, frame: dict):
        await self.send(text_data=events.dumps(frame))
