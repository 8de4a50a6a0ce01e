"""The event stream: what the use cases did, published to channel-layer groups once it is committed.

``publish_on_commit([(group, event), ...])`` sends each ``event`` (a channel-layer message: a
dict whose ``type`` names the handler of the consumers listening, e.g. ``"feed.state"`` for
``feed_state``) to its ``group`` when the current transaction commits, and never if it rolls
back: subscribers hear of changes the database holds, once (cf. Zulip's
``send_event_on_commit``). Outside a transaction it sends at once. One use case's messages go
in one call: they cross to the event loop together, in order (each crossing costs a few
milliseconds outside an async context), and ``then`` (e.g. counting the event in the metrics)
runs after them in the same commit hook.

Publishing is best effort and never the use case's failure: with the channel layer down
(Redis unreachable) the event is dropped, the use case's work stays committed, and the outage
is logged once (``CHANNEL_LAYER_HEALTH``, shared with the websockets that refuse themselves
meanwhile). Subscribers that must not miss anything read the database (the monitor polls it).

It works from synchronous code in any thread. Inside a ``sync_to_async`` worker of a running
server (the feed's consumer, an HTTP view under ASGI) the messages are handed to the server's
event loop, which sends them after those handed before, and the worker goes on at once: a
view's ack never waits for Redis (six round trips on a loop busy with hundreds of sockets; under
load that was a good part of an ack's time). Elsewhere (a view under WSGI, a Celery task, a
test) they are sent before the call returns, on a loop of its own.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import threading
import weakref
from collections.abc import Callable, Sequence

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .channel_layer import CHANNEL_LAYER_HEALTH

logger = logging.getLogger(__name__)


Message = tuple[str, dict]


def publish_on_commit(messages: Sequence[Message], then: Callable[[], None] | None = None) -> None:
    """Send each ``(group, event)`` of ``messages`` after the current transaction commits (now,
    outside one), then call ``then``."""
    messages = list(messages)

    def after_commit():
        publish_now(messages)
        if then is not None:
            then()

    transaction.on_commit(after_commit)


def publish_now(messages: Sequence[Message]) -> bool:
    """Send each ``(group, event)`` in order: handed to the server's event loop when called from
    one of its worker threads (True: handed over), else sent now (False, logged once per outage,
    when the layer is down)."""
    layer = get_channel_layer()
    if layer is None:  # no CHANNEL_LAYERS configured: nobody can be listening
        return False
    if (loop := _server_loop()) is not None:
        _publisher_of(loop).hand_over(layer, list(messages))
        return True
    try:
        async_to_sync(_send_all)(layer, messages)
    except Exception as exc:  # the layer's own errors (redis, OSError...) differ by backend
        CHANNEL_LAYER_HEALTH.failed(exc)
        return False
    CHANNEL_LAYER_HEALTH.worked()
    return True


async def _send_all(layer, messages: Sequence[Message]) -> None:
    for group, event in messages:
        await layer.group_send(group, event)


def _server_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop whose ``sync_to_async`` worker this thread is, if any (asgiref
    records it in the worker thread for ``async_to_sync``)."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return loop if loop is not None and loop.is_running() and not loop.is_closed() else None


class _LoopPublisher:
    """Sends what worker threads hand it on one event loop, one use case's messages after
    another in the order handed over (a viewer's other tabs hear of its events in order)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.pending: collections.deque = collections.deque()  # touched on the loop only
        self.task: asyncio.Task | None = None

    def hand_over(self, layer, messages: list[Message]) -> None:
        self.loop.call_soon_threadsafe(self._enqueue, layer, messages)

    def _enqueue(self, layer, messages: list[Message]) -> None:
        self.pending.append((layer, messages))
        if self.task is None:
            self.task = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.pending:
                layer, messages = self.pending.popleft()
                try:
                    await _send_all(layer, messages)
                except Exception as exc:
                    CHANNEL_LAYER_HEALTH.failed(exc)
                    continue
                CHANNEL_LAYER_HEALTH.worked()
        finally:
            self.task = None


_PUBLISHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPublisher] = weakref.WeakKeyDictionary()
_PUBLISHERS_LOCK = threading.Lock()


def _publisher_of(loop: asyncio.AbstractEventLoop) -> _LoopPublisher:
    with _PUBLISHERS_LOCK:
        if (publisher := _PUBLISHERS.get(loop)) is None:
            publisher = _PUBLISHERS[loop] = _LoopPublisher(loop)
        return publisher
