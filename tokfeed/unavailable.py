"""Answer 503 with ``Retry-After`` when the service cannot take a request now: one contract for
every HTTP path, the API's error shape with a machine-readable ``code``; nothing was applied, and
the same request may be sent again after ``Retry-After`` seconds.

- ``unavailable``: the request waited ``DATABASE_POOL_TIMEOUT`` seconds for a pooled connection
  (or found too many already waiting) (``PoolExhaustedMiddleware``);
- ``overloaded``: this process already has ``MAX_INFLIGHT`` units of work in flight
  (``CapacityMiddleware``, ``tokfeed.capacity``): refused at once, before any database work.

The feed's websocket says the same with an error frame (``feed.events.service_error_frame``).
"""
import logging

from django.db import OperationalError
from django.http import JsonResponse
from psycopg_pool import PoolTimeout, TooManyRequests

from .api_errors import error_body
from .capacity import CAPACITY, is_admitted_path
from .errors import Overloaded, ServiceError, Unavailable

logger = logging.getLogger(__name__)


def is_pool_exhausted(exc: BaseException) -> bool:
    """Whether ``exc`` (or what Django wrapped in it) says the connection pool ran dry."""
    return isinstance(exc, (PoolTimeout, TooManyRequests)) or (
        isinstance(exc, OperationalError) and isinstance(exc.__cause__, (PoolTimeout, TooManyRequests))
    )


def unavailable_response(exc: ServiceError | None = None) -> JsonResponse:
    """The 503 for a retryable refusal (by default: no database connection in time)."""
    exc = exc or Unavailable("the service is busy; try again shortly")
    response = JsonResponse(error_body(exc.message, exc.field, exc.code), status=exc.status)
    response["Retry-After"] = str(exc.retry_after)
    return response


class PoolExhaustedMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if is_pool_exhausted(exception):
            logger.warning("no database connection for %s %s in time: answered 503", request.method, request.path)
            return unavailable_response()
        return None


class CapacityMiddleware:
    """Requests to the API and the feed's HTTP fallback hold one of this process's slots while
    they run; past ``MAX_INFLIGHT`` they are answered 503 ``overloaded`` at once."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_admitted_path(request):
            return self.get_response(request)
        try:
            with CAPACITY.slot("http"):
                return self.get_response(request)
        except Overloaded as exc:
            return unavailable_response(exc)
