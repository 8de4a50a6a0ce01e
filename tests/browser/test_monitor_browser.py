"""The live monitor in a real browser: an operator opens it after a few views of an open feed,
sees the figures, and sees the next view arrive live."""
import time

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from algorithms.models import Algorithm
from feed.models import Signal
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_feed_browser import move_on, open_feed

pytestmark = pytest.mark.slow


def wait_for_signals(count: int, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while Signal.objects.count() < count:
        assert time.monotonic() < deadline, f"only {Signal.objects.count()} signals of {count}"
        time.sleep(0.1)


def test_the_monitor_shows_the_feeds_views_and_the_next_one_live(feed_server, browser_context):
    # Thresholds in the hundreds of milliseconds keep the test fast; the machine is the same.
    Algorithm.objects.filter(slug="seed-default").update(high_attention_ms=1500, mid_attention_ms=1000,
                                                         low_attention_ms=500)
    get_user_model().objects.create_user("operator", password="monitor-test-pw", is_staff=True)
    feed, feed_errors = open_feed(browser_context, feed_server + "/?algorithm=seed-default")
    feed.wait_for_timeout(1600)
    move_on(feed, 1)  # a high-attention view
    move_on(feed, 2)  # a skip
    wait_for_signals(2)

    operator_context = browser_context.browser.new_context(viewport={"width": 1280, "height": 1000})
    operator_context.set_default_timeout(20_000)
    monitor = operator_context.new_page()
    problems = []
    monitor.on("pageerror", lambda error: problems.append(str(error)))
    monitor.on("console", lambda message: "Content Security Policy" in message.text and problems.append(message.text))
    # The admin's pages name no icon, so the browser asks for /favicon.ico: not one of ours.
    monitor.on("response", lambda response: response.status >= 400 and not response.url.endswith("/favicon.ico")
               and problems.append(f"{response.status} {response.url}"))
    monitor.goto(feed_server + "/admin/login/?next=/admin/feed/feedsession/monitor/")
    monitor.fill("#id_username", "operator")
    monitor.fill("#id_password", "monitor-test-pw")
    monitor.click("input[type=submit]")
    expect(monitor.locator("#monitor-total-signals")).to_have_text("2")
    expect(monitor.locator("#monitor-signals")).to_contain_text("HIGH_ATTN")
    expect(monitor.locator("#monitor-active")).to_contain_text("seed-default")
    expect(monitor.locator("#monitor-live")).to_have_attribute("data-live", "open")

    move_on(feed, 3)  # the next view, while the monitor is open: it arrives live...
    wait_for_signals(3)
    expect(monitor.locator("#monitor-events tr.monitor-signal").first).to_contain_text("seed-default")
    # ...and the figures poll their way to it.
    expect(monitor.locator("#monitor-total-signals")).to_have_text("3", timeout=20_000)
    monitor.screenshot(path=str(ARTIFACTS / "monitor.png"), full_page=True)
    operator_context.close()
    assert not problems, problems  # no script error, nothing refused by the CSP
    assert not feed_errors
