"""Rate limits, all on DRF's throttles (their cache, their ``Retry-After``), one rate per scope
in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``:

- ``partner``: API requests per key (``API_RATE_PER_KEY``);
- ``feed_session``: new anonymous feed sessions per client address (``FEED_NEW_SESSIONS_RATE``):
  each costs a session row and a batch, and a client without cookies makes one per page view;
- ``admin_login``: login attempts per client address on the admin (``ADMIN_LOGIN_RATE``).

A client is its address (``REMOTE_ADDR``), or the one ``NUM_PROXIES`` trusted proxies put in
``X-Forwarded-For``: a client cannot pick its own.

Counts live in the ``rate_limits`` cache: Redis when ``REDIS_URL`` is set, so every worker
process and replica counts against one budget (in each process's memory, N workers gave a key N
times its rate), else the process's memory (one process: ``make run``). They are counted in
fixed windows of the rate's period, one atomic increment a request (``WindowCountThrottle``):
DRF's own throttle keeps the time of every request in the window and rewrites the whole list on
each one, a cost that grows with the rate and, in Redis, a read and a write of it per request.
A fixed window lets a client that waits for its edge send up to twice its rate across it.
"""
from __future__ import annotations

import functools
import logging
import math

from django.core.cache import caches
from django.http import HttpResponse
from redis.exceptions import RedisError  # Django's Redis cache raises the client's errors
from rest_framework import throttling

logger = logging.getLogger(__name__)

RATE_LIMITS_CACHE = "rate_limits"


def client_address(request) -> str | None:
    """The client's address, as every limit here sees it (and ``/metrics`` checks it)."""
    return throttling.BaseThrottle().get_ident(request)


_unreachable_logged_at = float("-inf")


def _count_in_window(window: str, timeout: int) -> int:
    """This request counted in ``window``'s count (made, with ``timeout``, by its first request)."""
    counts = caches[RATE_LIMITS_CACHE]
    try:
        return counts.incr(window)
    except ValueError:  # the window's first request (or the count expired)
        if counts.add(window, 1, timeout=timeout):
            return 1
        return counts.incr(window)  # another process made it first


class WindowCountThrottle(throttling.SimpleRateThrottle):
    """DRF's rate throttle (its rates, cache keys, ``Retry-After``), counting requests per fixed
    window in the ``rate_limits`` cache (see the module's docstring)."""

    def allow_request(self, request, view):
        if self.rate is None or (key := self.get_cache_key(request, view)) is None:
            return True
        self.now = self.timer()
        try:
            count = _count_in_window(f"{key}:{int(self.now // self.duration)}", self.duration + 1)
        except RedisError as exc:
            # Limits are a guard, not the service: with Redis away, requests go through unlimited
            # (and the channel layer's outage is what /readyz reports), said once a minute.
            global _unreachable_logged_at
            if self.now - _unreachable_logged_at >= 60:
                _unreachable_logged_at = self.now
                logger.warning("rate limits not applied: their counts are unreachable (%s)", exc)
            return True
        return count <= self.num_requests

    def wait(self):
        return self.duration - self.now % self.duration


class PerKeyThrottle(WindowCountThrottle):
    """API requests per key (a partner's key has a ``prefix``, unique to it); a request without a
    valid key is refused before it counts."""

    scope = "partner"

    def get_cache_key(self, request, view):
        ident = getattr(request.auth, "prefix", None) or self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PerClientThrottle(WindowCountThrottle):
    """Requests per client address in ``scope``, for plain Django views as well as DRF's."""

    def __init__(self, scope: str):
        self.scope = scope
        super().__init__()

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def seconds_to_wait(request, scope: str) -> int | None:
    """Count this request in ``scope``; None if it is allowed, else how long the client must wait."""
    throttle = PerClientThrottle(scope)
    if throttle.allow_request(request, None):
        return None
    return max(1, math.ceil(throttle.wait() or 1))


def too_many_requests(wait_s: int, what: str) -> HttpResponse:
    response = HttpResponse(f"Too many {what} from this address: try again in {wait_s} s.", status=429,
                            content_type="text/plain")
    response["Retry-After"] = str(wait_s)
    return response


def limit_posts(scope: str, what: str):
    """A view decorator: POSTs to it are limited per client in ``scope`` (429 past the rate)."""

    def decorate(view):
        @functools.wraps(view)
        def limited(request, *args, **kwargs):
            if request.method == "POST" and (wait := seconds_to_wait(request, scope)) is not None:
                return too_many_requests(wait, what)
            return view(request, *args, **kwargs)

        return limited

    return decorate
