"""A bounded property-based run over the whole API, generated from its OpenAPI schema
(schemathesis): whatever a partner sends, the answer is never a server error.

Derandomized, so CI runs the same examples every time; in-process through Django's WSGI
handler, inside the test's transaction on the shared real catalog.
"""
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import partner_key

EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def api_schema(catalog_db):
    from django.core.wsgi import get_wsgi_application

    # As Django's test client does: a request must not close the test's connection (and with it
    # the transaction the test runs in).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_api_fail(case):
    case.call_and_validate(headers={"Authorization": f"Api-Key {partner_key('fuzz')}"}, checks=[not_a_server_error])
