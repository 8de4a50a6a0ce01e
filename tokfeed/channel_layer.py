"""The Redis channel layer, made to wait out an outage instead of failing every consumer, and
the one record of whether the layer is up (``CHANNEL_LAYER_HEALTH``).

Channels starts a receive loop on the layer for every consumer, before the consumer's own
``connect`` runs. With Redis unreachable, channels-redis's ``receive`` raises at once and takes
the consumer down with a traceback per connection, so the consumer never gets to refuse the
socket cleanly (``feed.consumers``). Here ``receive`` waits and tries again, with a capped
backoff, and the consumer decides what an outage means for its socket.
"""
from __future__ import annotations

import asyncio
import logging

import redis
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0


class RedisChannelLayer(_RedisChannelLayer):
    async def receive(self, channel):
        delay = RETRY_FIRST_S
        while True:
            try:
                return await super().receive(channel)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)


class ChannelLayerHealth:
    """Logs the channel layer going down once per outage, and its recovery.

    One per process, shared by everything that uses the layer (the feed's sockets, the event
    stream), so an outage is one error in the log however many callers meet it.
    """

    def __init__(self):
        self.down = False

    def failed(self, exc: Exception) -> None:
        if not self.down:
            logger.error("the channel layer is unreachable (%s): websockets are refused (viewers use the HTTP "
                         "fallback) and events are not published until it is back", exc)
        self.down = True

    def worked(self) -> None:
        if self.down:
            logger.info("the channel layer is back: websockets are accepted and events published again")
        self.down = False


CHANNEL_LAYER_HEALTH = ChannelLayerHealth()
