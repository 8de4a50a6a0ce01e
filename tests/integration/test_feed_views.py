"""The feed page and the websocket's HTTP fallback, on the real catalog."""
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from catalog.models import Video
from feed.models import FeedSession, Impression, Signal
from feed.selectors import FEED_SESSION_KEY

CARD = re.compile(r'<article class="card" id="card-(\d+)-(\d+)"[^>]*?data-video="(\d+)"', re.S)


def cards(html: str) -> list[tuple[int, int, int]]:
    """(batch, position, video) of every card in the HTML."""
    return [tuple(map(int, match)) for match in CARD.findall(html)]


def feed_session(client) -> FeedSession:
    return FeedSession.objects.get(pk=client.session[FEED_SESSION_KEY])


def post_event(client, **event):
    event.setdefault("event_id", str(uuid.uuid4()))
    token = client.cookies["csrftoken"].value
    return client.post("/feed/events/", event, content_type="application/json", headers={"X-CSRFToken": token})


def test_the_page_serves_a_batch_of_cards_and_a_reload_keeps_them(catalog_db, client):
    page = client.get("/?algorithm=seed-default")  # its states are named below
    assert page.status_code == 200
    html = page.content.decode()
    shown = cards(html)
    assert [position for _, position, _ in shown] == [0, 1, 2, 3, 4]
    assert {batch for batch, _, _ in shown} == {1}
    session = feed_session(client)
    assert session.algorithm.slug == "seed-default" and session.anonymous_key == client.session.session_key
    assert 'ws-connect="/ws/feed/"' in html and "htmx-ext-ws.js" in html and "js/feed.js" in html
    assert 'id="why-state">L<' in html  # batch 1 was served in state 0, whose BATCH edge leads to L

    # A reload shows the cards not reacted to yet instead of serving another batch: the one that
    # was on screen, and the three after it as the view revised them.
    revised = cards(post_event(client, type="view", video=shown[0][2], watched_ms=3000).json()["html"])
    assert {(b, p) for b, p, _ in revised} <= {(1, 2), (1, 3), (1, 4)}  # only the picks that changed
    upcoming = {card[1]: card for card in [*shown[2:], *revised]}  # by position, revisions last
    again = cards(client.get("/").content.decode())
    assert again == [shown[1], *(upcoming[p] for p in sorted(upcoming))]
    assert feed_session(client).batch_count == 1


def test_a_caption_with_a_script_tag_renders_as_text(catalog_db, client):
    Video.objects.update(caption='<script>alert("owned")</script> #fyp')
    html = client.get("/").content.decode()
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; #fyp" in html
    assert '<script>alert("owned")' not in html


def test_a_card_shows_the_poster_facts_of_its_video(catalog_db, client):
    html = client.get("/").content.decode()
    batch, position, video_id = cards(html)[0]
    video = Video.objects.select_related("creator", "music").get(pk=video_id)
    card = html[html.index(f'id="card-{batch}-{position}"'):html.index(f'id="card-{batch}-{position + 1}"')]
    assert f"@{video.creator.handle}" in card
    assert f'data-duration-ms="{video.duration_s * 1000}"' in card and f"{video.duration_s} s" in card
    assert f'title="{video.like_count} likes"' in card and f'title="{video.play_count} plays"' in card
    if video.music:
        assert "♪" in card
    assert 'data-action="like"' in card and 'data-action="not_interested"' in card
    impression = Impression.objects.get(session=feed_session(client), video_id=video_id)
    assert f"served in state</dt><dd>{impression.state}" in card and impression.source in card


def test_debug_shows_the_why_overlay_and_the_algorithm(catalog_db, client):
    debug = client.get("/?debug=1").content.decode()
    assert 'class="feed debug show-why"' in debug and 'class="algorithm"' in debug and "why-toggle" in debug
    plain = client.get("/").content.decode()
    assert "show-why" not in plain and 'class="algorithm"' not in plain and "why-toggle" not in plain


def test_algorithm_query_picks_the_algorithm(catalog_db, client):
    client.get("/")
    first = feed_session(client)
    client.get("/?algorithm=navigable-ux")
    switched = feed_session(client)
    assert switched.pk != first.pk and switched.algorithm.slug == "navigable-ux"
    client.get("/")
    assert feed_session(client).pk == switched.pk  # the choice sticks

    unknown = client.get("/?algorithm=nope")
    assert unknown.status_code == 400
    assert "seed-default" in unknown.content.decode()
    # Not a slug at all: refused before it reaches PostgreSQL (a NUL was a 500).
    for bad in ("%00", "x" * 5000, "seed-default%00"):
        assert client.get(f"/?algorithm={bad}").status_code == 400, bad


def test_a_logged_in_viewer_keeps_one_feed_session_across_devices(catalog_db):
    user = get_user_model().objects.create_user("viewer", password="pw")
    phone, laptop, stranger = Client(), Client(), Client()
    phone.force_login(user)
    laptop.force_login(user)
    phone.get("/")
    laptop.get("/")
    stranger.get("/")
    assert feed_session(phone).pk == feed_session(laptop).pk
    assert feed_session(phone).viewer == user
    assert feed_session(stranger).pk != feed_session(phone).pk and feed_session(stranger).viewer is None


def test_the_http_fallback_applies_events_once_and_needs_csrf(catalog_db):
    client = Client(enforce_csrf_checks=True)
    served = {p: v for _, p, v in cards(client.get("/?algorithm=seed-default").content.decode())}  # states below
    video = served[0]
    event_id = str(uuid.uuid4())

    no_token = client.post("/feed/events/", {"type": "view", "event_id": event_id, "video": video, "watched_ms": 16000},
                           content_type="application/json")
    assert no_token.status_code == 403

    first = post_event(client, type="view", event_id=event_id, video=video, watched_ms=16000, duration_ms=20000)
    assert first.status_code == 200
    ack = first.json()
    html = ack.pop("html")
    assert ack == {"type": "ack", "event_id": event_id, "signal": "HIGH_ATTN", "state": "H", "duplicate": False}
    # The ack carries the cards after the one on screen, re-ranked with the view, to swap in by
    # id: those whose pick changed (a random card may already be one of H's picks).
    revised = cards(html)
    assert revised and {(b, p) for b, p, _ in revised} <= {(1, 2), (1, 3), (1, 4)}
    assert all(v != served[p] for _, p, v in revised)
    assert html.count('hx-swap-oob="outerHTML"') == len(revised)
    again = post_event(client, type="view", event_id=event_id, video=video, watched_ms=16000)
    assert again.json()["duplicate"] is True and again.json()["state"] == "H"
    assert "html" not in again.json()  # a resent event revises nothing again
    assert Signal.objects.filter(event_id=event_id).count() == 1

    liked = post_event(client, type="like", video=video).json()
    assert (liked["signal"], liked["state"]) == ("LIKE", "H")
    dismissed = post_event(client, type="not_interested", video=video).json()
    assert dismissed["signal"] == "NOT_INTERESTED"


@pytest.mark.parametrize("body, field", [
    ("{not json", None),
    ('["a list"]', None),
    ('{"type": "view", "event_id": "nope", "video": 1, "watched_ms": 1}', "event_id"),
    ('{"type": "teleport", "event_id": "%s"}' % uuid.uuid4(), "type"),
    ('{"type": "view", "event_id": "%s", "video": 1}' % uuid.uuid4(), "watched_ms"),
    ('{"type": "view", "event_id": "%s", "video": 1, "watched_ms": -5}' % uuid.uuid4(), "watched_ms"),
    ('{"type": "view", "event_id": "%s", "video": 1, "watched_ms": true}' % uuid.uuid4(), "watched_ms"),
    ('{"type": "like", "event_id": "%s"}' % uuid.uuid4(), "video"),
    ('{"type": "view", "event_id": "%s", "video": 999999999, "watched_ms": 10}' % uuid.uuid4(), "video"),
])
def test_a_malformed_event_gets_an_error_naming_the_field(catalog_db, client, body, field):
    client.get("/")
    token = client.cookies["csrftoken"].value
    response = client.post("/feed/events/", body, content_type="application/json", headers={"X-CSRFToken": token})
    assert response.status_code == 400
    frame = response.json()
    assert frame["type"] == "error" and frame["field"] == field and frame["error"] and frame["retry"] is False


def test_events_without_a_feed_session_are_refused(catalog_db, client):
    response = client.post("/feed/events/", {"type": "next", "event_id": str(uuid.uuid4())},
                           content_type="application/json")
    assert response.status_code == 409 and "feed page" in response.json()["error"]
    assert client.post("/feed/batch/").status_code == 409


def test_the_fallback_serves_the_next_batch_once(catalog_db, client):
    client.get("/")
    response = client.post("/feed/batch/", {"after": 1})
    assert response.status_code == 200
    html = response.content.decode()
    served = cards(html)
    assert {batch for batch, _, _ in served} == {2} and len(served) == 5
    assert "hx-swap-oob" not in html.split("<output")[0]  # cards are swapped into the target, not out of band
    assert 'id="why-state" hx-swap-oob="true"' in html
    # Asked again (the reply was lost): the same batch, not a third one.
    assert cards(client.post("/feed/batch/", {"after": 1}).content.decode()) == served
    assert feed_session(client).batch_count == 2
    # A batch changes the session: never served to a GET (a prefetch, a crawler).
    assert client.get("/feed/batch/?after=2").status_code == 405
    assert feed_session(client).batch_count == 2
    for bad in ("x", "²", "1" * 40):
        assert client.post("/feed/batch/", {"after": bad}).status_code == 400, bad


def test_past_its_capacity_the_fallback_and_the_api_answer_503_with_retry_after(catalog_db, client, settings):
    """Backpressure over HTTP: with the process's one slot held by other work, the fallback and
    the API are refused at once with the one 503 contract (Retry-After, code "overloaded"),
    nothing applied; the page, health and metrics still answer; the event resent is applied once."""
    from tests.conftest import partner_client
    from tokfeed.capacity import CAPACITY

    settings.MAX_INFLIGHT = 1
    served = {p: v for _, p, v in cards(client.get("/?algorithm=seed-default").content.decode())}
    partner = partner_client("overloaded")
    event = {"type": "view", "event_id": str(uuid.uuid4()), "video": served[0], "watched_ms": 16000}
    csrf = {"X-CSRFToken": client.cookies["csrftoken"].value}
    with CAPACITY.slot("test"):  # another request's work, in flight
        refused = [post_event(client, **event), client.post("/feed/batch/", {"after": 1}, headers=csrf),
                   partner.get("/api/v1/videos/")]
        assert [client.get(path).status_code for path in ("/", "/healthz")] == [200, 200]
    for response in refused:
        assert response.status_code == 503 and int(response["Retry-After"]) >= 1
        assert response.json() == {"error": response.json()["error"], "field": None, "code": "overloaded",
                                   "details": None}
    assert not Signal.objects.filter(event_id=event["event_id"]).exists()
    assert feed_session(client).batch_count == 1

    resent = post_event(client, **event)  # the same event, after the delay
    assert resent.status_code == 200 and resent.json()["signal"] == "HIGH_ATTN" and resent.json()["duplicate"] is False
    assert post_event(client, **event).json()["duplicate"] is True
    assert Signal.objects.filter(event_id=event["event_id"]).count() == 1
    assert partner.get("/api/v1/videos/").status_code == 200
    assert CAPACITY.in_flight == 0
