"""The feed as a viewer uses it, in a real browser: actions that are signals applied once, media
that plays or falls back without stalling, honest states, reasons in words, accessibility.

Media and cover images are served by the test itself (a Playwright route on a made-up https
host, which the page's CSP allows as any https media): a one-second WebM and a PNG that ffmpeg
writes, or a 404 for the URLs the test declares dead.
"""
import json
import re
import shutil
import subprocess
import time
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from catalog.models import Video
from feed.models import FeedSession, Signal
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_feed_browser import Network, card_video, move_on, open_feed

pytestmark = pytest.mark.slow

REASONS = re.compile(r"^(Because you (watched|liked|shared|follow) @|Picked for |Exploring something new|Popular right now)")
MEDIA_HOST = "https://media.tokfeed.test"


def wait_for(page, condition, what: str, timeout: float = 20):
    """Poll the database until ``condition()`` holds (the page's events arrive asynchronously).

    It waits with the page's clock, not time.sleep: the test's websocket route forwards frames
    only while Playwright runs."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)


def signals(session, **filters) -> list[Signal]:
    return list(Signal.objects.filter(session=session, **filters).order_by("id"))


def settled(page):
    expect(page.locator("#feed")).to_have_attribute("data-pending", "0", timeout=30_000)


def check_accessibility(page, name: str):
    """axe-core (vendored under static/js/vendor, served by the app) finds no serious violation
    of WCAG 2 A/AA on the page as it is now."""
    page.add_script_tag(url="/static/js/vendor/axe.min.js")
    result = page.evaluate("""() => axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa"]}})""")
    serious = [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], f"{name}: {serious}"


def test_actions_are_signals_applied_once_and_survive_offline(feed_server, browser_context):
    # Headless Chromium on Linux has no Web Share API: sharing copies the link.
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=feed_server)
    browser_context.add_init_script("delete Navigator.prototype.share;")
    network = Network(browser_context)
    page, errors = open_feed(browser_context, feed_server + "/")
    feed = page.locator("#feed")
    expect(feed).to_have_attribute("data-transport", "ws")
    session = FeedSession.objects.select_related("algorithm").get()
    cards = page.locator("#feed-cards .card")
    video0 = card_video(page, 0)

    # Reasons in words; the operator's terms and the algorithm's name are not shown.
    expect(cards.nth(0).locator(".reason")).to_have_text(REASONS)
    shown = page.locator("#feed").inner_text()
    assert session.algorithm.slug not in shown and "similarity" not in shown and "served in state" not in shown
    expect(cards.nth(0).locator(".why-card")).to_be_hidden()
    check_accessibility(page, "feed")

    # Like, then unlike: one LIKE, and one undo naming it.
    like = cards.nth(0).get_by_role("button", name="Like (l)")
    like.click()
    expect(like).to_have_attribute("aria-pressed", "true")
    settled(page)
    [liked] = signals(session, video_id=video0)
    assert liked.type == "LIKE"
    like.click()
    expect(like).to_have_attribute("aria-pressed", "false")
    settled(page)
    assert [(s.type, s.undoes_id) for s in signals(session, video_id=video0)] == [("LIKE", None), ("", liked.pk)]

    # Share copies the link and says so: one SHARE.
    cards.nth(0).get_by_role("button", name="Share (s)").click()
    expect(page.locator("#feed-toast")).to_contain_text("Link copied")
    settled(page)
    assert len(signals(session, video_id=video0, type="SHARE")) == 1
    web_url = Video.objects.get(pk=video0).web_url
    assert page.evaluate("navigator.clipboard.readText()") == (web_url or feed_server + "/")

    # Follow by keyboard: one FOLLOW_CREATOR; every card of that creator shows it.
    page.keyboard.press("f")
    expect(cards.nth(0).locator("button.follow")).to_have_attribute("aria-pressed", "true")
    settled(page)
    assert len(signals(session, video_id=video0, type="FOLLOW_CREATOR")) == 1

    # "Not interested", undone within its window: nothing is sent but the view.
    page.keyboard.press("x")
    expect(feed).to_have_attribute("data-current", str(card_video(page, 1)))
    expect(cards.nth(0)).to_have_class(re.compile("dismissed"))
    page.get_by_role("button", name="Undo").click()
    expect(cards.nth(0)).not_to_have_class(re.compile("dismissed"))
    # ...and kept: sent once its window (5 s) has passed.
    video1 = card_video(page, 1)
    page.keyboard.press("x")
    expect(feed).to_have_attribute("data-current", str(card_video(page, 2)))
    wait_for(page, lambda: signals(session, video_id=video1, type="NOT_INTERESTED"), "the kept not-interested")
    settled(page)
    assert not signals(session, video_id=video0, type="NOT_INTERESTED")  # the undone one never went
    assert len(signals(session, video_id=video1, type="NOT_INTERESTED")) == 1

    # Offline: the banner says so, a like waits, and is applied once when the network is back.
    network.go_offline()
    expect(page.locator("#feed-banner")).to_be_visible()
    expect(page.locator("#feed-banner")).to_contain_text("offline")
    video2 = card_video(page, 2)
    page.keyboard.press("l")
    expect(feed).not_to_have_attribute("data-pending", "0")
    page.wait_for_timeout(500)
    assert not signals(session, video_id=video2, type="LIKE")
    network.go_online()
    settled(page)
    expect(page.locator("#feed-banner")).to_be_hidden()
    page.wait_for_timeout(500)  # a duplicate, were one sent, would have been applied by now
    assert len(signals(session, video_id=video2, type="LIKE")) == 1

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "feed-ux-375.png")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_timeout(300)
    page.screenshot(path=ARTIFACTS / "feed-ux-1280.png")
    check_accessibility(page, "feed at 1280 px")
    print(f"screenshots: {ARTIFACTS / 'feed-ux-375.png'}, {ARTIFACTS / 'feed-ux-1280.png'}")
    assert errors == []

    # The liked page lists it (a tab of its own, opened last: a tab in the background is not painted).
    liked_page = browser_context.new_page()
    liked_page.goto(feed_server + "/liked/")
    expect(liked_page.locator(f'.liked-item[data-video="{video2}"]')).to_have_count(1)
    expect(liked_page.locator(f'.liked-item[data-video="{video0}"]')).to_have_count(0)  # unliked
    check_accessibility(liked_page, "liked page")
    liked_page.close()


@pytest.fixture
def media_files(tmp_path):
    """(a one-second 10 fps WebM, a PNG cover), written by ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        pytest.fail("ffmpeg is missing: apt-get install -y ffmpeg")
    clip, cover = tmp_path / "clip.webm", tmp_path / "cover.png"
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=180x320:rate=10", "-t", "1", "-c:v", "libvpx", "-b:v", "200k", "-an", str(clip)],
                   check=True)
    subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=0x2a6f97:s=180x320", "-frames:v", "1", str(cover)], check=True)
    return clip.read_bytes(), cover.read_bytes()


def test_media_plays_muted_remembers_sound_counts_loops_and_falls_back(feed_server, browser_context, media_files):
    clip, cover = media_files
    videos = list(Video.objects.all())
    for video in videos:
        video.media_url, video.cover_url = f"{MEDIA_HOST}/v/{video.pk}.webm", f"{MEDIA_HOST}/c/{video.pk}.png"
    Video.objects.bulk_update(videos, ["media_url", "cover_url"])
    # The first two cards' media play (they load with the page, and never change: the cards the
    # viewer has reached are never revised); every later video's is dead. Covers work until the
    # test kills them all (only the current card and the next one are ever loaded).
    playable: set[int] | None = None
    covers = {"dead": False}
    covers_served: set[int] = set()

    def serve_media(route):
        kind, name = urlparse(route.request.url).path.split("/")[1:3]
        video = int(name.split(".")[0])
        if kind == "v" and (playable is None or video in playable):
            route.fulfill(status=200, body=clip, content_type="video/webm")
        elif kind == "c" and not covers["dead"]:
            covers_served.add(video)
            route.fulfill(status=200, body=cover, content_type="image/png")
        else:
            route.fulfill(status=404, body="gone")

    browser_context.route(f"{MEDIA_HOST}/**", serve_media)
    page, errors = open_feed(browser_context, feed_server + "/?algorithm=seed-default")
    session = FeedSession.objects.get()
    cards = page.locator("#feed-cards .card")
    ids = [card_video(page, i) for i in range(2)]
    playable = set(ids)

    # It autoplays, muted; unmuting is remembered for the next cards (and pages).
    expect(cards.nth(0)).to_have_class(re.compile("playing"))
    assert cards.nth(0).locator("video").evaluate("v => v.muted && !v.paused")
    sound = page.get_by_role("button", name="Unmute (m)")
    sound.click()
    expect(page.get_by_role("button", name="Mute (m)")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("localStorage.getItem('tokfeed:unmuted')") == "1"
    page.wait_for_timeout(2600)  # more than two plays of the one-second clip
    move_on(page, 1)
    wait_for(page, lambda: signals(session, video_id=ids[0]), "the first view")
    [first] = signals(session, video_id=ids[0])
    # The loops count: watched more than twice the clip's length, which the client measured.
    assert 900 <= first.duration_ms <= 1100, first.duration_ms
    assert first.watched_ms >= 2000, first.watched_ms
    expect(cards.nth(1)).to_have_class(re.compile("playing"))
    assert cards.nth(1).locator("video").evaluate("v => !v.muted")

    # Tap (or space) pauses and plays; the progress bar moves.
    cards.nth(1).locator("video").click()
    expect(cards.nth(1)).to_have_class(re.compile("paused"))
    assert cards.nth(1).locator("video").evaluate("v => v.paused")
    page.keyboard.press(" ")
    expect(cards.nth(1)).not_to_have_class(re.compile("paused"))
    page.wait_for_function("() => document.querySelector('#feed-cards .card:nth-child(2) .progress-bar')"
                           ".style.transform.startsWith('scaleX(0.')")

    # A dead media URL: the cover stands in; a dead cover too: the poster. Neither stalls the feed.
    move_on(page, 2)  # (card 2's cover was asked for while card 1 was on screen; card 3's is now)
    expect(cards.nth(2)).to_have_attribute("data-media", "failed")
    expect(cards.nth(2).locator("video")).to_have_count(0)
    expect(cards.nth(2)).to_have_class(re.compile("has-cover"))
    expect(cards.nth(2).locator("img.cover")).to_be_visible()
    covers["dead"] = True
    # The first card reached whose cover was never served shows the poster. (Not simply card 4: a
    # revision may move a video whose cover already loaded to a later slot, and the browser's
    # cache then shows that cover without asking again.)
    index = 2
    while card_video(page, index) in covers_served:
        index += 1
        move_on(page, index)
        assert index <= 6, "every card reached had a cover served before they died"
    expect(cards.nth(index)).to_have_attribute("data-media", "failed")
    expect(cards.nth(index).locator("img.cover, video")).to_have_count(0)
    expect(cards.nth(index).locator(".poster")).to_be_visible()
    move_on(page, index + 1)
    settled(page)
    viewed = {s.video_id for s in signals(session) if s.watched_ms is not None}
    assert len(viewed) == index + 1
    assert errors == []


def test_the_end_of_the_catalog_and_an_empty_one_say_so(feed_server, browser_context):
    page, errors = open_feed(browser_context, feed_server + "/?algorithm=seed-default")
    # Nothing can be served any more (a video without a vector never is): the next batch is empty.
    Video.objects.update(embedding=None)
    for index in range(1, 5):
        move_on(page, index)
    expect(page.locator("#feed-end")).to_be_visible()
    expect(page.locator("#feed-end")).to_contain_text("You've seen every video")
    page.keyboard.press("j")
    expect(page.locator("#feed-end")).to_be_visible()
    expect(page.locator("#feed-cards .card")).to_have_count(5)
    assert "Loading" not in page.locator("#feed-status").inner_text()
    settled(page)
    page.screenshot(path=ARTIFACTS / "feed-ux-end-375.png")

    # A new viewer, with nothing to watch at all, is told so in words.
    other = browser_context.browser.new_context(viewport={"width": 375, "height": 812})
    try:
        empty = other.new_page()
        empty_errors = []
        empty.on("pageerror", lambda error: empty_errors.append(error))
        empty.goto(feed_server + "/?algorithm=seed-default")
        expect(empty.locator(".empty")).to_contain_text("There are no videos to watch yet")
        empty.wait_for_timeout(1000)
        expect(empty.locator("#feed-end")).to_be_hidden()
        assert empty_errors == []
    finally:
        other.close()
    assert errors == []


class HungServer:
    """The page's socket through the test, which can hold what the page sends, as a server that
    stopped answering while its socket stays open, and deliver it later, as one that recovers."""

    def __init__(self, context):
        self.hung = False
        self.held: list = []
        self.refill_requests = 0  # frames asking for the next batch (``remaining``), held or not
        context.route_web_socket("**/ws/feed/", self._route)

    def _route(self, page_side):
        server_side = page_side.connect_to_server()

        def from_page(message):
            if "remaining" in json.loads(message):
                self.refill_requests += 1
            if self.hung:
                self.held.append((server_side, message))
            else:
                server_side.send(message)

        page_side.on_message(from_page)
        server_side.on_message(page_side.send)

    def recover(self):
        self.hung = False
        for server_side, message in self.held:
            server_side.send(message)
        self.held.clear()


def test_a_batch_that_does_not_come_says_so_and_can_be_asked_for_again(feed_server, browser_context):
    server = HungServer(browser_context)
    page, errors = open_feed(browser_context, feed_server + "/")
    feed, stalled = page.locator("#feed"), page.locator("#feed-stalled")
    expect(feed).to_have_attribute("data-transport", "ws")
    server.hung = True
    for index in range(1, 5):
        move_on(page, index)
    page.keyboard.press("j")  # past the last card: the skeleton, and no batch comes
    expect(feed).to_have_class(re.compile(r"\bloading\b"))
    expect(stalled).to_be_hidden()
    expect(stalled).to_be_visible(timeout=15_000)
    expect(stalled).to_contain_text("taking longer than usual")
    check_accessibility(page, "stalled")

    asked = server.refill_requests
    stalled.get_by_role("button", name="Try again").click()
    wait_for(page, lambda: server.refill_requests > asked, "the next batch asked for again")
    expect(stalled).to_be_hidden()  # the wait starts over
    server.recover()
    expect(page.locator("#feed-cards .card").nth(5)).to_be_attached()
    expect(feed).to_have_attribute("data-current", str(card_video(page, 5)))
    expect(feed).not_to_have_class(re.compile(r"\bloading\b"))
    expect(stalled).to_be_hidden()
    settled(page)
    assert len({s.video_id for s in signals(FeedSession.objects.get()) if s.watched_ms is not None}) == 5
    assert errors == []
