"""Browser tests: Debian's chromium, driven by Playwright, against daphne serving the test database.

The server runs in a subprocess (an ASGI server with websockets, as in production), so the
tests are transactional and bring their own small catalog (``small_catalog``).
Install the browser with ``bash scripts/ensure-chromium.sh`` (never a browser that Playwright downloads).
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, connections

from tests.conftest import REPO

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


def _test_database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{quote(str(s['HOST']), safe='')}:{s['PORT']}/{s['NAME']}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def feed_server(small_catalog, tmp_path):
    """The URL of daphne serving tokfeed on the test database (in-memory channel layer)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(DATABASE_URL=_test_database_url(), DEBUG="1")
    log_path = tmp_path / "daphne.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tokfeed.asgi:application"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"daphne did not start:\n{log_path.read_text()}")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()  # before the test database is flushed: it holds connections to it
        server.wait(timeout=30)
        print(log_path.read_text()[-3000:])
        _wait_for_other_connections_to_close()


def _wait_for_other_connections_to_close(timeout: float = 10) -> None:
    """The server's connections end with it, but PostgreSQL notices a moment later."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pid, application_name, state, query FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            others = cursor.fetchall()
            if not others or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert not others, f"connections to the test database outlived the server: {others}"


@pytest.fixture
def browser_context(monkeypatch):
    """A fresh Chromium context (its own cookies, so its own feed session)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/ensure-chromium.sh`")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop set on this thread; the test's ORM calls are
    # still plain synchronous calls, which Django would otherwise refuse. (With a loop set, the
    # thread's connections are kept apart from its usual ones: they are closed below.)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 375, "height": 812})
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            connections.close_all()
            browser.close()
