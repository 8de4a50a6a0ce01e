"""The feed in a real browser: watch time becomes signals, the feed refills, nothing is lost offline."""
import json
import re
import shutil
import subprocess
import time

import pytest
from playwright.sync_api import expect

from algorithms.machine import watch_time_to_signal
from algorithms.models import Algorithm
from feed.models import FeedSession, Impression, Signal
from tests.browser.conftest import ARTIFACTS
from tests.conftest import free_port, serve, wait_until_listening

pytestmark = pytest.mark.slow


class Network:
    """The page's network, which the test can cut.

    Chromium's offline mode fails HTTP requests but leaves an open websocket working, so the
    socket is routed through the test, which drops its frames both ways while offline: the
    socket looks open and is dead, as a lost connection is until it times out.
    """

    def __init__(self, context):
        self.context, self.online = context, True
        context.route_web_socket("**/ws/feed/", self._route)

    def _route(self, page_side):
        server_side = page_side.connect_to_server()
        page_side.on_message(lambda message: self.online and server_side.send(message))
        server_side.on_message(lambda message: self.online and page_side.send(message))

    def go_offline(self):
        self.online = False
        self.context.set_offline(True)

    def go_online(self):
        self.online = True
        self.context.set_offline(False)


def open_feed(context, url):
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(error))
    page.goto(url)
    expect(page.locator("#feed-cards .card")).to_have_count(5)
    return page, errors


def card_video(page, index: int) -> int:
    return int(page.locator("#feed-cards .card").nth(index).get_attribute("data-video"))


def move_on(page, to_index: int):
    """Press j and wait until card ``to_index`` is the one on screen."""
    page.keyboard.press("j")
    expect(page.locator("#feed")).to_have_attribute("data-current", str(card_video(page, to_index)))


def test_watch_time_refills_and_offline_views(feed_server, browser_context):
    # Thresholds in the hundreds of milliseconds keep the test fast; the machine is the same.
    Algorithm.objects.filter(slug="seed-default").update(high_attention_ms=1500, mid_attention_ms=1000,
                                                         low_attention_ms=500)
    network = Network(browser_context)
    page, errors = open_feed(browser_context, feed_server + "/?algorithm=seed-default&debug=1")
    feed = page.locator("#feed")
    expect(feed).to_have_attribute("data-transport", "ws")
    expect(feed).to_have_attribute("data-current", str(card_video(page, 0)))
    session = FeedSession.objects.get()
    first = card_video(page, 0)

    # Past the HIGH threshold on the first card, then on to the next.
    page.wait_for_timeout(2000)
    move_on(page, 1)
    expect(page.locator("#why-signal")).to_have_text("HIGH_ATTN")
    expect(page.locator("#why-state")).to_have_text("H")
    signal = Signal.objects.get(session=session, video_id=first)
    assert signal.type == "HIGH_ATTN" and 1500 <= signal.watched_ms < 15000, signal.watched_ms
    session.refresh_from_db()
    assert session.state == "H"

    # Two cards from the end: the next batch is appended.
    move_on(page, 2)
    expect(page.locator("#feed-cards .card")).to_have_count(10)
    assert Impression.objects.filter(session=session, batch_number=2).count() == 5
    expect(feed).to_have_attribute("data-pending", "0")
    page.screenshot(path=ARTIFACTS / "feed-375.png")

    # Offline: two views wait in the outbox...
    network.go_offline()
    offline_views = [card_video(page, 2), card_video(page, 3)]
    page.wait_for_timeout(700)
    move_on(page, 3)
    # The clock stops while a card's media loads (no watch time for a video not yet shown): wait
    # until this one has played or given up offline, then watch it 0.7 s. (Its media fetch could
    # still hang from before the network went away; on a loaded machine that took > 0.7 s once.)
    expect(page.locator("#feed-cards .card").nth(3)).not_to_have_attribute("data-media", "waiting")
    page.wait_for_timeout(700)
    move_on(page, 4)
    expect(feed).to_have_attribute("data-pending", "2")
    expect(page.locator("#feed-status")).to_contain_text("Offline: 2 views wait")
    liked = card_video(page, 4)
    page.keyboard.press("l")  # a like waits too, and is said to be no view
    expect(page.locator("#feed-status")).to_contain_text("Offline: 2 views and 1 action wait to be sent.")
    page.wait_for_timeout(1000)
    assert not Signal.objects.filter(session=session, video_id__in=offline_views).exists()

    # ...and are recorded once each when the network is back (on a new socket).
    network.go_online()
    expect(feed).to_have_attribute("data-pending", "0", timeout=30_000)
    expect(feed).to_have_attribute("data-transport", "ws", timeout=30_000)
    page.wait_for_timeout(500)  # a duplicate, were one sent, would have been applied by now
    recorded = {s.video_id: s for s in Signal.objects.filter(session=session, video_id__in=offline_views)}
    assert Signal.objects.filter(session=session, video_id__in=offline_views).count() == 2
    assert set(recorded) == set(offline_views)
    assert Signal.objects.filter(session=session, video_id=liked, type="LIKE").count() == 1
    # The second was on screen for at least 0.7 s (more on a loaded machine): its signal is what
    # the thresholds make of the time measured offline, not a skip.
    second = recorded[offline_views[1]]
    assert second.watched_ms >= 650
    thresholds = Algorithm.objects.get(pk=session.algorithm_id).thresholds
    assert second.type == watch_time_to_signal(second.watched_ms, thresholds) != "SKIP"

    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_timeout(300)
    page.screenshot(path=ARTIFACTS / "feed-1280.png")
    assert errors == []


def test_the_feed_works_over_http_without_a_websocket(feed_server, browser_context):
    page, errors = open_feed(browser_context, feed_server + "/?transport=http")
    feed = page.locator("#feed")
    expect(feed).to_have_attribute("data-transport", "http")
    session = FeedSession.objects.get()
    viewed = [card_video(page, 0), card_video(page, 1)]
    move_on(page, 1)
    move_on(page, 2)  # two cards from the end: the next batch comes by an htmx POST
    expect(page.locator("#feed-cards .card")).to_have_count(10)
    expect(feed).to_have_attribute("data-pending", "0")
    assert sorted(Signal.objects.filter(session=session).values_list("video_id", flat=True)) == sorted(viewed)
    # (The refill is its own request here, served before the second view's revision revised it.)
    assert Impression.objects.filter(session=session, batch_number=2, withdrawn=False).count() == 5
    ids = [i for i, _ in dom_cards(page)]
    assert len(ids) == len(set(ids)) == 10
    page.get_by_role("button", name="Like").nth(2).click()
    expect(feed).to_have_attribute("data-pending", "0")
    assert Signal.objects.filter(session=session, type="LIKE", video_id=card_video(page, 2)).count() == 1
    assert errors == []


def fall_back_to_http(page, moves: int) -> list[int]:
    """Move through ``moves`` cards with the socket refused: the feed ends on HTTP with every
    view delivered. Returns the videos viewed."""
    feed = page.locator("#feed")
    viewed = [card_video(page, i) for i in range(moves)]
    for index in range(1, moves + 1):
        move_on(page, index)
    expect(feed).to_have_attribute("data-transport", "http", timeout=15_000)
    expect(feed).to_have_attribute("data-pending", "0", timeout=30_000)
    return viewed


@pytest.fixture
def server_without_redis(small_catalog, tmp_path):
    """daphne whose channel layer is Redis at an address where nothing listens, as with Redis down."""
    with serve(tmp_path, REDIS_URL="redis://127.0.0.1:1/0") as url:
        yield url, tmp_path


def test_with_the_channel_layer_down_the_feed_moves_to_http_and_loses_nothing(server_without_redis,
                                                                               browser_context):
    url, log_dir = server_without_redis
    page, errors = open_feed(browser_context, url + "/")
    session = FeedSession.objects.get()
    viewed = fall_back_to_http(page, 3)  # two cards from the end: the next batch comes over HTTP too
    expect(page.locator("#feed-cards .card")).to_have_count(10, timeout=30_000)
    page.wait_for_timeout(500)  # a duplicate, were one sent, would have been applied by now
    recorded = list(Signal.objects.filter(session=session).values_list("video_id", flat=True))
    assert sorted(recorded) == sorted(viewed)
    # The server said what is wrong once, not once per refused socket.
    log = "".join(p.read_text() for p in log_dir.glob("daphne-*.log"))
    assert log.count("the channel layer is unreachable") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert errors == []


@pytest.fixture
def server_with_redis_to_come(small_catalog, tmp_path):
    """daphne whose Redis is down at first; ``start_redis()`` brings it up on its address."""
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is missing: scripts/ensure-redis.sh installs it")
    port = free_port()
    processes = []

    def start_redis():
        processes.append(subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until_listening(port, processes[-1], "redis-server")

    try:
        with serve(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0") as url:
            yield url, start_redis
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def test_when_the_channel_layer_recovers_the_feed_goes_back_to_the_socket(server_with_redis_to_come,
                                                                          browser_context):
    url, start_redis = server_with_redis_to_come
    page, errors = open_feed(browser_context, url + "/")
    feed = page.locator("#feed")
    session = FeedSession.objects.get()
    fall_back_to_http(page, 1)

    start_redis()
    # The socket is retried with a backoff capped at 8 s; one that stays open takes over.
    expect(feed).to_have_attribute("data-transport", "ws", timeout=40_000)
    move_on(page, 2)
    expect(feed).to_have_attribute("data-pending", "0", timeout=30_000)
    assert sorted(Signal.objects.filter(session=session).values_list("video_id", flat=True)) == sorted(
        [card_video(page, 0), card_video(page, 1)])
    assert errors == []


def dom_cards(page) -> list[tuple[str, int]]:
    """(id, video) of every card in the feed, in order."""
    return [(i, int(v)) for i, v in page.locator("#feed-cards .card").evaluate_all(
        "cards => cards.map(c => [c.id, c.dataset.video])")]


def live_cards(session) -> list[tuple[str, int]]:
    return [(f"card-{b}-{p}", v) for b, p, v in Impression.objects.filter(session=session, withdrawn=False)
            .order_by("batch_number", "position").values_list("batch_number", "position", "video_id")]


def test_leaving_a_card_revises_the_later_cards_but_never_the_one_on_screen(feed_server, browser_context):
    page, errors = open_feed(browser_context, feed_server + "/?algorithm=seed-default")  # random picks after a skip: every later card changes
    feed = page.locator("#feed")
    expect(feed).to_have_attribute("data-transport", "ws")
    session = FeedSession.objects.get()
    before = dom_cards(page)

    # Leaving card 0 shows card 1, and the cards after it are replaced in place, by id.
    move_on(page, 1)
    on_screen = page.locator("#card-1-1")
    on_screen.evaluate("card => { card.dataset.marker = 'kept'; }")  # the element itself, not a copy
    on_screen_html = on_screen.inner_html()
    # (Random picks after a skip: a card keeps its place only if a draw picks its video again.)
    page.wait_for_function("""olds => olds.some(([id, video]) => document.getElementById(id).dataset.video != video)""",
                           arg=[[i, str(v)] for i, v in before[2:]])
    expect(feed).to_have_attribute("data-pending", "0")
    after = dom_cards(page)
    assert [i for i, _ in after] == [i for i, _ in before]  # same ids, none twice
    assert after[:2] == before[:2]
    assert after == live_cards(session)
    assert on_screen.get_attribute("data-marker") == "kept" and on_screen.inner_html() == on_screen_html

    # The current card's clock was not touched by the swap: its view counts the whole stay.
    page.wait_for_timeout(1200)
    move_on(page, 2)  # a replacement is current now: adopted like any card
    expect(page.locator("#feed-cards .card")).to_have_count(10)  # the refill, after the revision
    expect(feed).to_have_attribute("data-pending", "0")
    signal = Signal.objects.get(session=session, video_id=before[1][1])
    assert signal.watched_ms >= 1100, signal.watched_ms
    page.wait_for_timeout(500)  # the revision after this view, were it late, has come by now
    ids = [i for i, _ in dom_cards(page)]
    assert len(ids) == len(set(ids)) == 10
    assert dom_cards(page) == live_cards(session)
    shown = [v for _, v in dom_cards(page)]
    assert len(set(shown)) == 10

    # A replacement that comes too late (the viewer already reached that card, or is past it)
    # is refused; one for a card not reached yet is swapped in and observed like the others.
    def replace(card_id: str, video: int) -> None:
        page.evaluate("""([id, video]) => htmx.swap(document.getElementById("feed-cards"),
            `<article class="card" id="${id}" hx-swap-oob="outerHTML" data-video="${video}" data-batch="1"
              data-duration-ms="1000"><p>late</p></article>`, {swapStyle: "none"})""", [card_id, video])

    current_id, current_video = dom_cards(page)[2]
    replace(current_id, 999_001)
    replace("card-1-1", 999_002)
    assert dom_cards(page)[1:3] == [("card-1-1", before[1][1]), (current_id, current_video)]
    replace("card-1-4", 999_003)
    assert dom_cards(page)[4] == ("card-1-4", 999_003)
    move_on(page, 3)
    move_on(page, 4)  # the swapped-in card becomes current when it is on screen
    assert errors == []


class OverloadedOnce:
    """The page's socket through the test, which answers the page's first view as an overloaded
    server would (not forwarding it) and notes when each view reaches the server."""

    RETRY_AFTER_MS = 1500

    def __init__(self, context):
        self.refused_at: float | None = None
        self.refused_id: str | None = None
        self.views: list[tuple[float, str]] = []  # (when forwarded, event_id), in order
        context.route_web_socket("**/ws/feed/", self._route)

    def _route(self, page_side):
        server_side = page_side.connect_to_server()

        def from_page(message):
            event = json.loads(message)
            if event.get("type") == "view" and self.refused_id is None:
                self.refused_id, self.refused_at = event["event_id"], time.monotonic()
                page_side.send(json.dumps({
                    "type": "error", "event_id": event["event_id"], "error": "at capacity", "field": None,
                    "code": "overloaded", "retry": True, "retry_after_ms": self.RETRY_AFTER_MS}))
                return
            if event.get("type") == "view":
                self.views.append((time.monotonic(), event["event_id"]))
            server_side.send(message)

        page_side.on_message(from_page)
        server_side.on_message(page_side.send)


def test_an_overloaded_answer_holds_the_outbox_then_resends_the_same_events_in_order(feed_server, browser_context):
    socket = OverloadedOnce(browser_context)
    page, errors = open_feed(browser_context, feed_server + "/")
    feed = page.locator("#feed")
    expect(feed).to_have_attribute("data-transport", "ws")
    session = FeedSession.objects.get()
    viewed = [card_video(page, 0), card_video(page, 1)]
    move_on(page, 1)  # its view is refused: the page holds it...
    expect(feed).to_have_attribute("data-hold-until", re.compile(r"\d+"))
    move_on(page, 2)  # ...and the next view waits behind it
    expect(feed).to_have_attribute("data-pending", "0", timeout=30_000)

    # Both reached the server after the delay, the refused one first, with its own event id.
    assert socket.refused_id is not None
    (first_at, first_id), (_, second_id) = socket.views[:2]
    assert first_id == socket.refused_id and second_id != first_id
    assert first_at - socket.refused_at >= OverloadedOnce.RETRY_AFTER_MS / 1000
    signals = list(Signal.objects.filter(session=session).order_by("id").values_list("event_id", "video_id"))
    assert [(str(e), v) for e, v in signals] == [(first_id, viewed[0]), (second_id, viewed[1])]
    assert errors == []
