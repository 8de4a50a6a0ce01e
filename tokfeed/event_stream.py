"""The event stream: what the use cases did, published to channel-layer groups once it is committed.

``publish_on_commit(group, event)`` sends ``event`` (a channel-layer message: a dict whose
``type`` names the handler of the consumers listening, e.g. ``"feed.state"`` for
``feed_state``) to ``group`` when the current transaction commits, and never if it rolls back:
subscribers hear of changes the database holds, once (cf. Zulip's ``send_event_on_commit``).
Outside a transaction it sends at once.

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

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from .channel_layer import CHANNEL_LAYER_HEALTH

logger = logging.getLogger(__name__)


def publish_on_commit(group: str, event: dict) -> None:
    """Send ``event`` to ``group`` after the current transaction commits (now, outside one)."""
    transaction.on_commit(lambda: publish_now(group, event))


def publish_now(group: str, event: dict) -> bool:
    """Send ``event`` to ``group`` now; False (logged once per outage) when the layer is down."""
    layer = get_channel_layer()
    if layer is None:  # no CHANNEL_LAYERS configured: nobody can be listening
        return False
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception as exc:  # the layer's own errors (redis, OSError...) differ by backend
        CHANNEL_LAYER_HEALTH.failed(exc)
        return False
    CHANNEL_LAYER_HEALTH.worked()
    return True
