"""The Redis channel layer, made to wait out an outage instead of failing every consumer.

Channels starts a receive loop on the layer for every consumer, before the consumer's own
``connect`` runs. With Redis unreachable, channels-redis's ``receive`` raises at once and takes
the consumer down with a traceback per connection, so the consumer never gets to refuse the
socket cleanly (``feed.consumers``). Here ``receive`` waits and tries again, with a capped
backoff, and the consumer decides what an outage means for its socket.
"""
from __future__ import annotations

import asyncio

import redis
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer

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
