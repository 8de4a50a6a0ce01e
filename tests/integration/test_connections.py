"""Database connections cannot run out: each server process holds at most its pool.

Django runs each ASGI request on a thread of its own; with persistent connections every such
thread kept one, past CONN_MAX_AGE, until PostgreSQL refused new clients and every request
failed. The server here gets a pool of 4 and 50 concurrent requests for several rounds.
"""
import concurrent.futures
import urllib.request

import pytest

from tests.conftest import other_connections, partner_key, serve

pytestmark = pytest.mark.slow

POOL_SIZE = 4
CONCURRENT = 50
ROUNDS = 3


def _get(url: str, headers: dict) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_concurrent_requests_leave_no_more_connections_than_the_pool(small_catalog, tmp_path):
    key = partner_key("load")
    # (A long wait for a pooled connection: a loaded machine must not turn this into a 503 test;
    # and no admission limit, MAX_INFLIGHT 0: the pool alone is under test, backpressure's
    # refusals have tests of their own.)
    with serve(tmp_path, DATABASE_POOL_MAX_SIZE=str(POOL_SIZE), DATABASE_POOL_MIN_SIZE="1",
               DATABASE_POOL_TIMEOUT="120", FEED_NEW_SESSIONS_RATE="1000/min", MAX_INFLIGHT="0") as url:
        # Database-backed pages, half for partners (the catalog API), half for viewers (a new
        # feed session and its first batch each).
        requests = [
            (f"{url}/api/v1/videos/?page_size=5", {"Authorization": f"Api-Key {key}"}) if i % 2 else (f"{url}/", {})
            for i in range(CONCURRENT)
        ]
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT) as pool:
            for round_number in range(ROUNDS):
                statuses = list(pool.map(lambda r: _get(*r), requests))
                assert statuses == [200] * CONCURRENT, f"round {round_number}: {statuses}"
        held = other_connections()
        assert 1 <= len(held) <= POOL_SIZE, held
