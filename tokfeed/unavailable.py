"""Answer 503 with ``Retry-After`` when the database has no connection to give in time.

A request that waited ``DATABASE_POOL_TIMEOUT`` seconds for a pooled connection (or found too
many already waiting) is refused as temporarily unavailable, not as a server error: the client
is told to come back, and nothing it sent was applied.
"""
import logging

from django.db import OperationalError
from django.http import JsonResponse
from psycopg_pool import PoolTimeout, TooManyRequests

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2


def is_pool_exhausted(exc: BaseException) -> bool:
    """Whether ``exc`` (or what Django wrapped in it) says the connection pool ran dry."""
    return isinstance(exc, (PoolTimeout, TooManyRequests)) or (
        isinstance(exc, OperationalError) and isinstance(exc.__cause__, (PoolTimeout, TooManyRequests))
    )


def unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {"error": "the service is busy; try again shortly", "field": None, "code": "unavailable", "details": None},
        status=503,
    )
    response["Retry-After"] = str(RETRY_AFTER_S)
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
