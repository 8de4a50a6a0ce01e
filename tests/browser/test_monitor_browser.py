"""The live monitor in a real browser: an operator lowers the HIGH threshold in the admin while a
viewer's feed is open in another browser, the viewer's next view is judged by the new threshold,
and the monitor shows the figures and the next view arriving live."""
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


def log_in(context, url: str, next_path: str):
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: "Content Security Policy" in message.text and problems.append(message.text))
    # The admin's pages name no icon, so the browser asks for /favicon.ico: not one of ours.
    page.on("response", lambda response: response.status >= 400 and not response.url.endswith("/favicon.ico")
            and problems.append(f"{response.status} {response.url}"))
    page.goto(f"{url}/admin/login/?next={next_path}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "monitor-test-pw")
    page.click("input[type=submit]")
    return page, problems


def test_an_operators_threshold_edit_judges_the_next_view_and_the_monitor_shows_it(feed_server, browser_context):
    seed = Algorithm.objects.get(slug="seed-default")  # 15/12/9 s: a 1.6 s view is a skip
    get_user_model().objects.create_superuser("operator", "operator@example.com", "monitor-test-pw")
    feed, feed_errors = open_feed(browser_context, feed_server + "/?algorithm=seed-default")
    feed.wait_for_timeout(1600)
    move_on(feed, 1)
    wait_for_signals(1)
    assert Signal.objects.get().type == "SKIP"

    # The operator lowers the thresholds in the admin, in a browser of their own.
    operator_context = browser_context.browser.new_context(viewport={"width": 1280, "height": 1000})
    operator_context.set_default_timeout(20_000)
    admin_page, problems = log_in(operator_context, feed_server, f"/admin/algorithms/algorithm/{seed.pk}/change/")
    admin_page.fill("#id_high_attention_ms", "1500")
    admin_page.fill("#id_mid_attention_ms", "1000")
    admin_page.fill("#id_low_attention_ms", "500")
    admin_page.click("input[name=_continue]")
    expect(admin_page.locator(".messagelist")).to_contain_text("was changed successfully")

    # The open feed's next 1.6 s view is high attention under the new threshold.
    feed.wait_for_timeout(1600)
    move_on(feed, 2)
    wait_for_signals(2)
    assert list(Signal.objects.order_by("id").values_list("type", flat=True)) == ["SKIP", "HIGH_ATTN"]

    monitor = admin_page
    monitor.goto(feed_server + "/admin/feed/feedsession/monitor/")
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
