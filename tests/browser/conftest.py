"""Browser tests: Debian's chromium, driven by Playwright, against daphne serving the test database.

The server runs in a subprocess (``tests.conftest.serve``: an ASGI server with websockets, as in
production), so the tests are transactional and bring their own small catalog (``small_catalog``).
Install the browser with ``bash scripts/ensure-chromium.sh`` (never a browser that Playwright downloads).
"""
import os
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import REPO, serve

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]


@pytest.fixture
def feed_server(small_catalog, tmp_path):
    """The URL of daphne serving tokfeed on the test database (in-memory channel layer)."""
    with serve(tmp_path) as url:
        yield url


@pytest.fixture
def browser_context(monkeypatch):
    """A fresh Chromium context (its own cookies, so its own feed session)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/ensure-chromium.sh`")
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as actions (Playwright's expect gives up after 5 s by default): on
    # a loaded 2-core machine a card's media once took longer than that to start playing.
    expect.set_options(timeout=20_000)

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
