"""A request that gets no database connection in time is told to come back (503), not a 500."""
from django.db import OperationalError
from django.test import RequestFactory
from psycopg_pool import PoolTimeout

from tokfeed.unavailable import PoolExhaustedMiddleware


def _raised_by_django(cause):
    try:
        try:
            raise cause
        except Exception as exc:
            raise OperationalError(str(exc)) from exc
    except OperationalError as wrapped:
        return wrapped


def test_an_exhausted_pool_is_answered_503_with_retry_after():
    middleware = PoolExhaustedMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get("/api/v1/videos/"),
                                            _raised_by_django(PoolTimeout("couldn't get a connection after 10 sec")))
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert b'"code": "unavailable"' in response.content


def test_other_database_errors_are_left_alone():
    middleware = PoolExhaustedMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), OperationalError("server closed the connection")) is None
