"""The A/B dashboard in a real browser, as an operator: the comparison page with its plot, and a
simulation started from its button (eager, as the server has no broker) showing its chart.
Screenshots go to the test artifacts (``comparison.png``, ``simulation.png``)."""
import uuid

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from algorithms.models import SimulationRun
from feed import services
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.slow


def _watch(algorithm: str, watched_ms: list[int]) -> None:
    session = services.start_session(algorithm=algorithm)
    batch = services.next_batch(session.id)
    for item, watched in zip(batch.items, watched_ms):
        services.record_view(session.id, video_id=item.video.pk, event_id=uuid.uuid4(), watched_ms=watched)


def _log_in(page, url: str, next_path: str) -> None:
    page.goto(f"{url}/admin/login/?next={next_path}")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-operator-password")
    page.click("input[type=submit]")


def test_an_operator_compares_algorithms_and_simulates_one(feed_server, browser_context):
    User.objects.create_superuser("operator", "operator@example.com", "a-long-operator-password")
    for watched in ([16000, 1200, 900, 20000], [1000, 800], [15500, 13000, 600]):
        _watch("evidence", watched)
    for watched in ([700, 500, 16000], [2500, 1800, 9000, 12000]):
        _watch("seed-default", watched)

    page = browser_context.new_page()
    page.set_viewport_size({"width": 1400, "height": 1000})
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    # Scripts refused (CSP) and failed requests; the browser's own favicon request may 404.
    page.on("console", lambda message: message.type == "error" and not message.text.startswith(
        "Failed to load resource") and problems.append(message.text))
    page.on("response", lambda response: response.status >= 400 and not response.url.endswith("/favicon.ico")
            and problems.append(f"{response.status} {response.url}"))

    _log_in(page, feed_server, "/admin/dashboard/comparison/")
    expect(page.locator("#comparison")).to_be_visible()
    expect(page.locator('#comparison tr[data-slug="evidence"] .sessions')).to_have_text("3")
    expect(page.locator('#comparison tr[data-slug="seed-default"] .sessions')).to_have_text("2")
    expect(page.locator('#comparison tr[data-slug="seed-default"] .verdict').first).to_contain_text("significant")
    plot = page.locator("#comparison-plot")
    expect(plot).to_be_visible()
    expect(plot).to_have_js_property("complete", True)
    assert plot.evaluate("img => img.naturalWidth") > 0, "the plot did not load"
    page.screenshot(path=str(ARTIFACTS / "comparison.png"), full_page=True)

    # Simulate seed-default from its row, with a small run.
    page.locator('#comparison tr[data-slug="seed-default"] a.button').click()
    expect(page.locator("#simulate-form")).to_be_visible()
    page.fill("#id_viewers_per_taste", "1")
    page.fill("#id_batches", "3")
    page.fill("#id_tastes", "2")
    page.locator("#simulate-form input[type=submit]").click()
    expect(page.locator("#simulation-progress.done, #simulation-progress.failed")).to_be_visible(timeout=120_000)
    run = SimulationRun.objects.get()
    assert run.status == SimulationRun.Status.DONE, run.error
    chart = page.locator("#simulation-chart")
    expect(chart).to_be_visible()
    expect(chart).to_have_js_property("complete", True)
    assert chart.evaluate("img => img.naturalWidth") > 0, "the chart did not load"
    expect(page.locator("#simulation-runs tbody tr")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "simulation.png"), full_page=True)

    # A run still going (as under a real worker): htmx polls its progress until it is done.
    going = SimulationRun.objects.create(algorithm=run.algorithm, algorithm_version=run.algorithm_version,
                                         options=run.options, status=SimulationRun.Status.RUNNING, done=1, total=4)
    page.goto(f"{feed_server}/admin/dashboard/simulate/seed-default/?run={going.pk}")
    expect(page.locator("#simulation-progress progress")).to_have_attribute("value", "1")
    SimulationRun.objects.filter(pk=going.pk).update(done=3)
    expect(page.locator("#simulation-progress progress")).to_have_attribute("value", "3")
    SimulationRun.objects.filter(pk=going.pk).update(done=4, status=SimulationRun.Status.DONE, result=run.result)
    expect(page.locator("#simulation-chart")).to_be_visible()
    expect(page.locator("#simulation-runs tbody tr")).to_have_count(2)
    assert not problems, problems
