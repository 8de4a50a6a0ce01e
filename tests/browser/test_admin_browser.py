"""The algorithm dashboard in a real browser: an operator logs in, the machine's picture is
drawn by the vendored Mermaid under the page's CSP, params follow the batch type, and a save
through the real form applies."""
import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from algorithms.models import Algorithm
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.slow


def log_in(context, url: str):
    User.objects.create_superuser("operator", "operator@example.com", "operator-password")
    page = context.new_page()
    page.set_viewport_size({"width": 1440, "height": 1000})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in message.text
            and errors.append(message.text))
    page.on("response", lambda response: response.status >= 400 and not response.url.endswith("/favicon.ico")
            and errors.append(f"{response.status} {response.url}"))
    page.goto(f"{url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-password")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("operator")
    return page, errors


def test_an_operator_sees_the_machine_drawn_and_saves_an_edit(feed_server, browser_context):
    evidence = Algorithm.objects.get(slug="evidence")
    page, errors = log_in(browser_context, feed_server)

    page.goto(f"{feed_server}/admin/algorithms/algorithm/{evidence.pk}/change/")

    diagram = page.locator('#machine-diagram[data-rendered="true"] svg')
    expect(diagram).to_be_visible()
    expect(diagram.locator(".node")).to_have_count(3)  # the start marker, explore, focus
    expect(diagram).to_contain_text("explore")
    expect(diagram).to_contain_text("HIGH_ATTN, MID_ATTN, LIKE, SHARE, FOLLOW_CREATOR")
    page.screenshot(path=str(ARTIFACTS / "algorithm-page.png"), full_page=True)

    # Params follow the batch type: a sampled state draws topics and queries nothing.
    expect(page.locator("#id_states-0-param_mu")).to_be_visible()
    expect(page.locator("#id_states-0-param_n_topics")).to_be_hidden()
    page.select_option("#id_states-0-batch_type", "sampled")
    expect(page.locator("#id_states-0-param_n_topics")).to_be_visible()
    expect(page.locator("#id_states-0-param_mu")).to_be_hidden()
    page.select_option("#id_states-0-batch_type", "personalized")

    page.fill("#id_high_attention_ms", "14000")
    page.fill("#id_states-1-param_r", "0.05")
    page.click("input[name=_continue]")

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    evidence.refresh_from_db()
    assert evidence.high_attention_ms == 14000
    assert evidence.states.get(name="focus").params["r"] == 0.05
    expect(page.locator('#machine-diagram[data-rendered="true"] svg')).to_contain_text(re.compile(r"\br\s0\.05"))
    assert errors == []
