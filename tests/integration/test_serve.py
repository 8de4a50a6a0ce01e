"""The production server (``python -m tokfeed.serve``, ``make serve``) as an operator runs it: real
processes, real Redis, real PostgreSQL.

- Two uvicorn workers behind one port: a viewer's tabs held by different workers (each handshake
  names its worker: ``SERVED_BY_HEADER``) hear each other's events through the Redis channel
  layer; ``/metrics`` adds up both workers; the Celery worker it started runs a job on the same
  database; with ``LOG_FORMAT=json`` the server's lines are JSON.
- The embedded PostgreSQL: started once by the command before its workers, sized for them, and
  stopped with it.
"""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
import redis
from celery import Celery, current_app
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from websockets.sync.client import connect

from catalog.models import Topic
from feed import services
from feed.selectors import FEED_SESSION_KEY
from tests.conftest import (
    REPO, database_url, free_port, partner_key, wait_for_other_connections_to_close, wait_until_listening,
)
from tests.integration.test_consumer import TIMEOUT
from tests.integration.test_embedded_database import SERVER_SETTINGS, _postgres_running, finish, manage
from tokfeed.embedded_db.server import max_connections, shared_buffers_mb

# Its own Redis database: the server's channel layer and broker; emptied first (no stale tasks).
REDIS_URL = os.environ.get("TEST_SERVE_REDIS_URL", "redis://127.0.0.1:6379/11")
#: How long the command may take to migrate, collect static files and start its workers.
START_TIMEOUT = 300


@contextlib.contextmanager
def production_server(tmp_path, *args: str, unset: tuple[str, ...] = (), **env_overrides: str):
    """``python -m tokfeed.serve`` on a free port, with ``args``, without the environment variables
    ``unset``; yields (its address, its log file). Stopped by SIGTERM, which must end it cleanly."""
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "PROMETHEUS_MULTIPROC_DIR", *unset)}
    env.update(TOKFEED_DATA_DIR=str(tmp_path / "data"), **env_overrides)
    log_path = tmp_path / f"serve-{port}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "tokfeed.serve", "--port", str(port), *args],
                                  cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(port, server, "tokfeed.serve", log_path, timeout=START_TIMEOUT)
        yield f"127.0.0.1:{port}", log_path
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        finally:
            print(log_path.read_text()[-5000:])
        assert code == 0, f"the server exited {code} on SIGTERM"


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def tabs_on_two_workers(stack: contextlib.ExitStack, address: str, cookie: str) -> list:
    """Two websockets of one viewer, held by two different worker processes (closed with ``stack``).

    The workers share one listening socket and the kernel gives each connection to one of them;
    a connection that lands on a worker already holding a tab is closed and another opened.
    """
    tabs = {}
    for _ in range(50):
        tab = stack.enter_context(connect(f"ws://{address}/ws/feed/", origin=f"http://{address}", proxy=None,
                                          additional_headers={"Cookie": cookie}, open_timeout=TIMEOUT))
        worker = tab.response.headers["X-Served-By"]
        if worker in tabs:
            tab.close()
        else:
            tabs[worker] = tab
        if len(tabs) == 2:
            return list(tabs.values())
    pytest.fail(f"50 connections all landed on worker(s) {list(tabs)}")


def frames_until(tab, last) -> list[str]:
    """The frames ``tab`` receives up to and including the first for which ``last(frame)`` holds."""
    frames = [tab.recv(TIMEOUT)]
    while not last(frames[-1]):
        frames.append(tab.recv(TIMEOUT))
    return frames


def metric_lines(page: bytes, name: str) -> list[str]:
    return [line for line in page.decode().splitlines() if line.startswith(name + "{")]


@pytest.mark.slow
def test_two_workers_behind_one_port_share_a_viewers_events_metrics_and_jobs(small_catalog, tmp_path):
    broker = redis.Redis.from_url(REDIS_URL)
    try:
        broker.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis must run at {REDIS_URL} for this test: {exc}")
    session = services.start_session(algorithm="seed-default", session_id=uuid.UUID(int=20261205))
    videos = [item.video.pk for item in services.next_batch(session.id).items]  # the page's first batch
    store = SessionStore()
    store[FEED_SESSION_KEY] = str(session.id)
    store.create()
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={store.session_key}"
    view_event, next_event = str(uuid.uuid4()), str(uuid.uuid4())

    # (The test database is migrated: as on a replica whose release step migrates.)
    with production_server(tmp_path, "--workers", "2", "--celery-concurrency", "1", "--skip-migrate",
                           DATABASE_URL=database_url(), REDIS_URL=REDIS_URL,
                           # The key that signed the viewer's session (this process's).
                           SECRET_KEY=django_settings.SECRET_KEY,
                           SERVED_BY_HEADER="1", LOG_FORMAT="json", API_RATE_PER_KEY="4/day") as (address, log_path):
        status, _, body = get(f"http://{address}/readyz")
        assert status == 200, body
        assert {name: check["status"] for name, check in json.loads(body)["checks"].items()} == {
            "database": "ok", "channel_layer": "ok", "broker": "ok", "embedding_model": "ok",
            "cross_encoder": "not configured"}

        with contextlib.ExitStack() as tabs:
            first, second = tabs_on_two_workers(tabs, address, cookie)
            # A view on the first worker: acked there, and the tab on the other worker hears the new state.
            first.send(json.dumps({"type": "view", "event_id": view_event, "video": videos[0],
                                   "watched_ms": 16000, "duration_ms": 20000}))
            assert json.loads(first.recv(TIMEOUT)) == {
                "type": "ack", "event_id": view_event, "signal": "HIGH_ATTN", "state": "H", "duplicate": False}
            assert json.loads(second.recv(TIMEOUT)) == {"type": "state", "state": "H", "signal": "HIGH_ATTN"}
            # The next batch, asked for on the first: its cards there, the new state on the other.
            first.send(json.dumps({"type": "next", "event_id": next_event, "batch": 1}))
            frames = frames_until(first, lambda frame: frame.startswith('<div id="feed-cards"'))
            acks = [json.loads(f) for f in frames if f.startswith("{")]
            after_batch = [a for a in acks if a.get("event_id") == next_event]
            assert len(after_batch) == 1 and after_batch[0]["signal"] is None
            # (seed-default's BATCH edge from H goes to M)
            assert json.loads(second.recv(TIMEOUT)) == {"type": "state", "state": "M", "signal": None}

            # One key's rate is one budget, whichever worker answers (counted in Redis, not in each
            # worker's memory, which gave a key its rate once per worker).
            key = partner_key("two-workers")
            while True:
                day, statuses = time.time() // 86400, {}
                for _ in range(200):
                    if len(statuses) == 2 and min(map(len, statuses.values())) >= 5:
                        break
                    request = urllib.request.Request(f"http://{address}/api/v1/creators/",
                                                     headers={"Authorization": f"Api-Key {key}"})
                    try:
                        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                            status, headers = response.status, response.headers
                    except urllib.error.HTTPError as error:
                        status, headers = error.code, error.headers
                    statuses.setdefault(headers["X-Served-By"], []).append(status)
                if time.time() // 86400 == day:
                    break  # (else the day's window turned over during the requests: again)
                key = partner_key("two-workers-again")
            assert len(statuses) == 2 and min(map(len, statuses.values())) >= 5
            answered = [status for worker in statuses.values() for status in worker]
            assert answered.count(200) == 4 and set(answered) == {200, 429}

            # Metrics, whichever worker answers: both workers' values added up.
            status, headers, page = get(f"http://{address}/metrics")
            assert status == 200
            assert metric_lines(page, "tokfeed_websockets_open") == ['tokfeed_websockets_open{path="/ws/feed/"} 2.0']
        # Closed tabs no longer count (once each worker's consumer has finished with its socket).
        deadline = time.monotonic() + TIMEOUT
        while (open_now := metric_lines(get(f"http://{address}/metrics")[2], "tokfeed_websockets_open")) != [
                'tokfeed_websockets_open{path="/ws/feed/"} 0.0'] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert open_now == ['tokfeed_websockets_open{path="/ws/feed/"} 0.0']
        assert metric_lines(page, "tokfeed_feed_signals_applied_total") == [
            'tokfeed_feed_signals_applied_total{type="HIGH_ATTN"} 1.0']
        assert metric_lines(page, "tokfeed_feed_batches_served_total") == [
            'tokfeed_feed_batches_served_total{algorithm="seed-default",state="H"} 1.0']
        assert 'django_http_responses_total_by_status_view_method_total{method="GET",status="200",view="readyz"}' \
            in page.decode()

        # The Celery worker it started does the jobs, on the same database.
        # Not the current app: shared tasks follow the current app, and the tests after this one
        # run theirs in-process (as this one would otherwise leave them waiting for a worker).
        jobs = Celery("probe", broker=REDIS_URL, backend=REDIS_URL, set_as_current=False)
        try:
            topics = jobs.send_task("catalog.cluster_topics", args=[django_settings.EMBEDDING_MODEL]).get(timeout=120)
        finally:
            jobs.close()
        assert current_app.main == "tokfeed"
        assert topics == 3 and Topic.objects.count() == 3

        log = log_path.read_text()
    # The server's lines are JSON (the Celery banner, printed before logging starts, is not a log line).
    access = [json.loads(line) for line in log.splitlines() if "GET /metrics HTTP/1.1" in line]
    assert access and all((line["logger"], line["level"]) == ("uvicorn.access", "INFO") for line in access)
    serving = [json.loads(line) for line in log.splitlines() if "tokfeed is serving on" in line]
    assert len(serving) == 1 and serving[0]["logger"] == "tokfeed.serve"
    assert "manage.py collectstatic" in log and "manage.py migrate" not in log
    wait_for_other_connections_to_close("the production server")


@pytest.mark.slow
def test_the_embedded_database_is_started_once_before_the_workers_sized_for_them_and_stopped_with_them(tmp_path):
    data_dir = tmp_path / "data"
    # A fresh data directory: initdb, our settings recorded and applied by a restart before the
    # workers start (a plain first start would run on initdb's defaults until the next one).
    with production_server(tmp_path, "--workers", "1", "--celery-concurrency", "5", REDIS_URL=REDIS_URL,
                           unset=("DATABASE_URL", "SECRET_KEY", "DEBUG")) as (address, log_path):
        status, _, body = get(f"http://{address}/readyz")
        assert status == 200, body
        assert json.loads(body)["checks"]["database"]["detail"].startswith("pgvector")
        # A command run beside it joins the same server: our settings are in force.
        settings_now = finish(manage(data_dir, "shell", "-c", SERVER_SETTINGS))
        assert f"shared_buffers_mb {shared_buffers_mb()}" in settings_now
        # Room for every process's pool: 1 web worker, 5 Celery processes, and the others.
        assert f"max_connections {max_connections(12, 1 + 5 + 3)}" in settings_now
        assert max_connections(12, 1 + 5 + 3) > max_connections(12)
    log = log_path.read_text()
    assert "restarting to apply its settings" in log and "preparing: manage.py migrate --noinput" in log
    assert not _postgres_running(data_dir)
