"""Rate limits, all on DRF's throttles (their cache, their ``Retry-After``), one rate per scope
in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``:

- ``partner``: API requests per key (``API_RATE_PER_KEY``);
- ``feed_session``: new anonymous feed sessions per client address (``FEED_NEW_SESSIONS_RATE``):
  each costs a session row and a batch, and a client without cookies makes one per page view;
- ``admin_login``: login attempts per client address on the admin (``ADMIN_LOGIN_RATE``).

A client is its address (``REMOTE_ADDR``), or the one ``NUM_PROXIES`` trusted proxies put in
``X-Forwarded-For``: a client cannot pick its own.
"""
from __future__ import annotations

import functools
import math

from django.http import HttpResponse
from rest_framework import throttling


def client_address(request) -> str | None:
    """The client's address, as every limit here sees it (and ``/metrics`` checks it)."""
    return throttling.BaseThrottle().get_ident(request)


class PerKeyThrottle(throttling.SimpleRateThrottle):
    """API requests per key (a partner's key has a ``prefix``, unique to it); a request without a
    valid key is refused before it counts."""

    scope = "partner"

    def get_cache_key(self, request, view):
        ident = getattr(request.auth, "prefix", None) or self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class PerClientThrottle(throttling.SimpleRateThrottle):
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
