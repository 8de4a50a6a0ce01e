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

It works from synchronous code in any thread: inside a ``sync_to_async`` worker (the feed's
consumer) the send runs on the server's event loop, elsewhere (an HTTP view under WSGI, a
Celery task, a test) on a loop of its own.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from asgiref.sync import async_to_sync
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
    """Send each ``(group, event)`` now, in order; False (logged once per outage) when the layer
    is down."""
    layer = get_channel_layer()
    if layer is None:  # no CHANNEL_LAYERS configured: nobody can be listening
        return False

    async def send_all():
        for group, event in messages:
            await layer.group_send(group, event)

    try:
        async_to_sync(send_all)()
    except Exception as exc:  # the layer's own errors (redis, OSError...) differ by backend
        CHANNEL_LAYER_HEALTH.failed(exc)
        return False
    CHANNEL_LAYER_HEALTH.worked()
    return True
