"""The viewer's actions over the HTTP fallback (the websocket carries the same events): like,
share, follow and their undo, each applied once; the liked page; reset; reasons in words."""
import uuid

from django.urls import reverse

from feed.explanation_queries import nearest_reacted
from feed.models import FeedSession, Signal
from feed.selectors import positive_histories, reranker_log
from feed.timeline import session_timeline
from tests.integration.test_feed_views import cards, feed_session, post_event

REASONS = ("Because you ", "Picked for ", "Exploring something new", "Popular right now", "Sponsored")


def test_like_and_its_undo_are_each_applied_once(catalog_db, client):
    shown = cards(client.get("/").content.decode())
    session = feed_session(client)
    video = shown[0][2]
    like_id = str(uuid.uuid4())
    ack = post_event(client, type="like", video=video, event_id=like_id).json()
    assert ack["signal"] == "LIKE" and not ack["duplicate"]
    assert f'data-video="{video}"' in client.get("/liked/").content.decode()
    others = [v for _, _, v in shown[1:]]
    assert set(nearest_reacted(session.pk, others, ["LIKE"])) == set(others)  # the like is evidence

    undo_id = str(uuid.uuid4())
    first = post_event(client, type="undo", undoes=like_id, event_id=undo_id)
    again = post_event(client, type="undo", undoes=like_id, event_id=undo_id)
    assert first.status_code == again.status_code == 200
    assert first.json()["signal"] is None and not first.json()["duplicate"] and again.json()["duplicate"]
    like = Signal.objects.get(session=session, event_id=like_id)
    undo = Signal.objects.get(session=session, event_id=undo_id)
    assert undo.undoes_id == like.pk and undo.type == "" and undo.video_id == video
    assert Signal.objects.filter(session=session).count() == 2
    assert f'data-video="{video}"' not in client.get("/liked/").content.decode()
    assert nearest_reacted(session.pk, others, ["LIKE"]) == {}  # no longer evidence

    # Liked again: a new like, which the page shows again.
    post_event(client, type="like", video=video)
    assert f'data-video="{video}"' in client.get("/liked/").content.decode()


def test_an_undone_like_is_no_positive_for_training_co_occurrence_or_the_timeline(catalog_db, client, admin_client):
    # Each of these read the like as made after it was undone: the reranker's training log
    # labelled its impression positive, co-occurrence counted the session as a liker, and the
    # session's timeline showed the undo as "no signal".
    shown = cards(client.get("/").content.decode())
    session = feed_session(client)
    undone, kept = shown[0][2], shown[1][2]
    like_id = str(uuid.uuid4())
    post_event(client, type="like", video=undone, event_id=like_id)
    post_event(client, type="undo", undoes=like_id)
    post_event(client, type="like", video=kept)

    log = reranker_log()
    labels = {i.video: i.label for i in log.impressions if i.session == str(session.pk)}
    assert labels == {kept: 1}  # the undone like is no reaction at all
    assert {(s.video, s.positive) for s in log.signals if s.session == str(session.pk)} == {(kept, True)}
    likers = positive_histories([undone, kept])
    assert str(session.pk) in likers[kept] and str(session.pk) not in likers.get(undone, frozenset())

    signals = [e for e in session_timeline(session) if e.kind == "signal"]
    assert [(e.video_id, e.type, e.undoes, e.undone) for e in signals] == [
        (undone, "LIKE", "", True), (undone, "", "LIKE", False), (kept, "LIKE", "", False)]
    html = admin_client.get(reverse("admin:feed_feedsession_change", args=[session.pk])).content.decode()
    timeline = html[html.index('id="session-timeline"'):]
    assert f"LIKE on video {undone} (undone)" in timeline and f"undo of LIKE on video {undone}" in timeline
    assert "no signal on" not in timeline


def test_an_undo_names_an_action_of_the_session_that_can_be_undone(catalog_db, client):
    shown = cards(client.get("/").content.decode())
    video = shown[0][2]
    view_id, share_id, like_id = (str(uuid.uuid4()) for _ in range(3))
    post_event(client, type="view", video=video, watched_ms=1000, event_id=view_id)
    post_event(client, type="share", video=video, event_id=share_id)
    post_event(client, type="like", video=video, event_id=like_id)
    post_event(client, type="undo", undoes=like_id)
    for undoes, code in [(view_id, "not_undoable"), (share_id, "not_undoable"), (str(uuid.uuid4()), "not_found"),
                         (like_id, "already_undone")]:
        response = post_event(client, type="undo", undoes=undoes)
        assert response.status_code == 400, response.content
        assert response.json()["code"] == code and response.json()["field"] == "undoes"
        assert response.json()["retry"] is False
    response = post_event(client, type="undo")
    assert response.status_code == 400 and response.json()["field"] == "undoes"


def test_share_and_follow_are_signals(catalog_db, client):
    shown = cards(client.get("/").content.decode())
    session = feed_session(client)
    assert post_event(client, type="share", video=shown[0][2]).json()["signal"] == "SHARE"
    follow_id = str(uuid.uuid4())
    assert post_event(client, type="follow_creator", video=shown[1][2], event_id=follow_id).json()["signal"] == (
        "FOLLOW_CREATOR")
    assert post_event(client, type="undo", undoes=follow_id).status_code == 200
    assert sorted(Signal.objects.filter(session=session).values_list("type", flat=True)) == ["", "FOLLOW_CREATOR",
                                                                                             "SHARE"]


def test_reset_starts_a_fresh_session_and_keeps_the_liked_page(catalog_db, client):
    shown = cards(client.get("/?algorithm=seed-default").content.decode())
    old = feed_session(client)
    post_event(client, type="like", video=shown[0][2])
    token = client.cookies["csrftoken"].value
    response = client.post("/feed/reset/", headers={"X-CSRFToken": token})
    assert response.status_code == 302 and response["Location"] == "/"
    html = client.get("/").content.decode()
    new = feed_session(client)
    assert new.pk != old.pk and new.algorithm_id == old.algorithm_id and new.anonymous_key == old.anonymous_key
    assert new.batch_count == 1 and not Signal.objects.filter(session=new).exists()
    assert cards(html) and FeedSession.objects.filter(anonymous_key=old.anonymous_key).count() == 2
    assert f'data-video="{shown[0][2]}"' in client.get("/liked/").content.decode()


def test_the_liked_page_says_so_when_nothing_is_liked(catalog_db, client):
    client.get("/")
    assert "You haven't liked any videos yet" in client.get("/liked/").content.decode()


def test_every_card_says_why_in_words(catalog_db, client):
    html = client.get("/?algorithm=seed-default").content.decode()
    shown = cards(html)
    # Watched to the end: the next cards are picked near it and say so.
    post_event(client, type="view", video=shown[0][2], watched_ms=20_000)
    post_event(client, type="view", video=shown[1][2], watched_ms=20_000)
    token = client.cookies["csrftoken"].value
    batch = client.post("/feed/batch/", {"after": "1"}, headers={"X-CSRFToken": token}).content.decode()
    reasons = [part.split("</p>")[0] for part in batch.split('<p class="reason">')[1:]]
    assert len(reasons) == len(cards(batch)) > 0
    assert all(r.startswith(REASONS) for r in reasons), reasons
    assert any(r.startswith("Because you watched @") for r in reasons), reasons
