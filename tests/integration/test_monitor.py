"""The live monitor's figures and page, and a session's timeline ("why this video") in the admin.

The figures are checked against sums made by hand over rows the test writes, with known values
and timestamps, at a fixed instant far from any other test's rows.
"""
import datetime as dt
import statistics
import uuid

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from algorithms.models import Algorithm
from catalog.models import Video
from feed import services
from feed.models import FeedSession, Impression, ServedBatch, Signal
from feed.monitor_queries import monitor_figures

NOW = dt.datetime(2030, 1, 1, 12, 0, 30, tzinfo=dt.UTC)


def at(minutes_ago: float) -> dt.datetime:
    return NOW - dt.timedelta(minutes=minutes_ago)


def make_session(algorithm: Algorithm, state: str, updated_minutes_ago: float) -> FeedSession:
    session = FeedSession.objects.create(algorithm=algorithm, state=state)
    FeedSession.objects.filter(pk=session.pk).update(updated_at=at(updated_minutes_ago))
    return session


def serve(session, video, *, state: str, batch: int, position: int = 0, minutes_ago: float, withdrawn=False):
    impression = Impression.objects.create(session=session, video=video, batch_number=batch, position=position,
                                           state=state, batch_type="random", source="random", withdrawn=withdrawn)
    Impression.objects.filter(pk=impression.pk).update(created_at=at(minutes_ago))


def signal(session, video, kind: str, *, watched_ms=None, minutes_ago: float, served_state=""):
    row = Signal.objects.create(session=session, video=video, type=kind, watched_ms=watched_ms, event_id=uuid.uuid4(),
                                state_before="0", state_after="0", served_state=served_state)
    Signal.objects.filter(pk=row.pk).update(created_at=at(minutes_ago))


def batch_row(session, number: int, build_ms: float, minutes_ago: float):
    row = ServedBatch.objects.create(session=session, number=number, state="0", batch_type="random", next_state="0",
                                     size=5, build_ms=build_ms)
    ServedBatch.objects.filter(pk=row.pk).update(created_at=at(minutes_ago))


def test_the_monitors_figures_are_those_computed_by_hand(catalog_db):
    seed, evidence = Algorithm.objects.get(slug="seed-default"), Algorithm.objects.get(slug="evidence")
    v = list(Video.objects.order_by("id")[:6])
    a = make_session(seed, "H", 1)
    b = make_session(seed, "H", 14)
    c = make_session(seed, "L", 3)
    d = make_session(evidence, "focus", 2)
    make_session(seed, "H", 16)  # inactive: changed before the window

    # Served: v0 by a's state 0 and H; v1 by H; v2 to d by explore; v3 withdrawn (never shown).
    serve(a, v[0], state="0", batch=1, minutes_ago=10)
    serve(a, v[1], state="0", batch=1, position=1, minutes_ago=10)
    serve(b, v[0], state="H", batch=2, minutes_ago=9)
    serve(c, v[0], state="L", batch=1, minutes_ago=5)
    serve(c, v[1], state="L", batch=1, position=1, minutes_ago=5)
    serve(d, v[2], state="explore", batch=1, minutes_ago=4)
    serve(d, v[3], state="explore", batch=1, position=1, minutes_ago=4, withdrawn=True)
    serve(a, v[4], state="0", batch=0, minutes_ago=20)  # before the window

    # Views (with a watch time) and an action, inside the window, and one view before it.
    views = [  # (session, video, type, watched_ms, minutes ago)
        (a, v[0], "HIGH_ATTN", 16000, 9.5),
        (a, v[1], "SKIP", 1000, 9.2),
        (b, v[0], "SKIP", 2000, 8.9),
        (c, v[0], "LOW_ATTN", 9500, 4.5),
        (c, v[1], "SKIP", 500, 4.4),
        (d, v[2], "MID_ATTN", 12500, 3.5),
    ]
    served_by = {(a, v[0]): "0", (a, v[1]): "0", (b, v[0]): "H", (c, v[0]): "L", (c, v[1]): "L", (d, v[2]): "explore"}
    for session, video, kind, ms, ago in views:
        signal(session, video, kind, watched_ms=ms, minutes_ago=ago, served_state=served_by[session, video])
    signal(a, v[0], "LIKE", minutes_ago=9.4)
    signal(a, v[4], "HIGH_ATTN", watched_ms=20000, minutes_ago=19)  # before the window
    signal(c, v[1], "", watched_ms=3, minutes_ago=4.3)  # recorded before served_state was kept: state_before

    for session, number, ms, ago in [(a, 1, 10.0, 10), (b, 2, 30.0, 9), (c, 1, 20.0, 5), (d, 1, 50.0, 4),
                                     (a, 9, 1000.0, 30)]:  # the last before the window
        batch_row(session, number, ms, ago)

    figures = monitor_figures(now=NOW)

    assert [(r.algorithm, r.state, r.sessions) for r in figures.active_sessions] == [
        ("evidence", "focus", 1), ("seed-default", "H", 2), ("seed-default", "L", 1)]

    # Signals per minute by type: each minute of the window, and the mean over its 15 minutes.
    per_minute = {minute: counts for minute, counts in figures.signals_per_minute}
    assert per_minute[dt.datetime(2030, 1, 1, 11, 51, tzinfo=dt.UTC)] == {"HIGH_ATTN": 1, "SKIP": 2, "LIKE": 1}
    assert per_minute[dt.datetime(2030, 1, 1, 11, 56, tzinfo=dt.UTC)] == {"LOW_ATTN": 1, "SKIP": 1}
    assert sum(sum(c.values()) for c in per_minute.values()) == 7
    assert figures.signal_types == ["HIGH_ATTN", "LIKE", "LOW_ATTN", "MID_ATTN", "SKIP"]
    assert figures.signal_rates == pytest.approx({"HIGH_ATTN": 1 / 15, "LIKE": 1 / 15, "LOW_ATTN": 1 / 15,
                                                  "MID_ATTN": 1 / 15, "SKIP": 3 / 15})

    # Watch time and skips per algorithm and the state that served each viewed video.
    by_hand = {}
    for session, video, kind, ms, _ in views + [(c, v[1], "", 3, 4.3)]:
        key = (session.algorithm.slug, served_by[session, video] if kind else "0")
        by_hand.setdefault(key, []).append((ms, kind == "SKIP"))
        by_hand.setdefault((session.algorithm.slug, None), []).append((ms, kind == "SKIP"))
    expected = {key: (len(rows), statistics.mean(ms for ms, _ in rows), statistics.mean(s for _, s in rows))
                for key, rows in by_hand.items()}
    got = {(r.algorithm, r.state): (r.views, r.mean_watched_ms, r.skip_rate)
           for r in figures.watch_by_state + figures.watch_by_algorithm}
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key]), key

    assert [(s.video_id, s.impressions) for s in figures.most_served] == [(v[0].id, 3), (v[1].id, 2), (v[2].id, 1)]
    assert figures.latency.batches == 4
    assert figures.latency.p50_ms == pytest.approx(np.percentile([10, 30, 20, 50], 50))
    assert figures.latency.p95_ms == pytest.approx(np.percentile([10, 30, 20, 50], 95))
    assert figures.totals == {"sessions": 4, "signals": 7, "batches": 4}


def test_the_monitor_page_is_for_staff_only(catalog_db, client, admin_client):
    session = services.start_session(algorithm="seed-default")
    batch = services.next_batch(session.id)
    services.record_view(session.id, video_id=batch.items[0].video.pk, event_id=uuid.uuid4(), watched_ms=16000)
    page, fragment = reverse("admin:feed_monitor"), reverse("admin:feed_monitor_figures")

    response = admin_client.get(page)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'hx-trigger="every 5s"' in html and 'ws-connect="/ws/admin/monitor/"' in html
    assert "<script>" not in html  # the strict CSP: scripts come from files only
    assert 'id="monitor-total-signals">1<' in html and "HIGH_ATTN" in html
    figures = admin_client.get(fragment)
    assert figures.status_code == 200 and 'id="monitor-latency"' in figures.content.decode()
    assert 'id="monitor-total-batches">1<' in figures.content.decode()
    assert reverse("admin:feed_monitor") in admin_client.get(reverse("admin:feed_feedsession_changelist")).content.decode()

    for url in (page, fragment):
        refused = client.get(url)
        assert refused.status_code == 302 and refused["Location"].startswith(reverse("admin:login"))
    client.force_login(get_user_model().objects.create_user("viewer", password="x"))
    for url in (page, fragment):
        refused = client.get(url)
        assert refused.status_code == 302 and refused["Location"].startswith(reverse("admin:login"))


def test_a_sessions_timeline_shows_its_batches_items_score_parts_and_transitions(catalog_db, admin_client):
    # The evidence algorithm scores its picks once there is interest: a view, then the next batch.
    session = services.start_session(algorithm="evidence", session_id=uuid.UUID(int=20261205))
    first = services.next_batch(session.id)
    viewed = first.items[0].video.pk
    outcome = services.record_view(session.id, video_id=viewed, event_id=uuid.uuid4(), watched_ms=30000)
    services.revise_upcoming(session.id, viewed_video=viewed)
    second = services.next_batch(session.id)

    scored = Impression.objects.filter(session=session, batch_number=2, withdrawn=False, score__isnull=False)
    assert scored.count() >= 1
    impression = scored.order_by("position").first()
    assert set(impression.score_parts) == {"liked", "watched_near", "skipped_near", "explore"}
    # The view remembers the state that served its video.
    assert Signal.objects.get(session=session).served_state == first.state
    served = ServedBatch.objects.get(session=session, number=2)
    assert (served.state, served.batch_type, served.next_state, served.size) == (
        second.state, second.batch_type, second.next_state, len(second.items))
    assert served.build_ms > 0

    html = admin_client.get(reverse("admin:feed_feedsession_change", args=[session.pk])).content.decode()
    timeline = html[html.index('id="session-timeline"'):]
    batch_two = timeline[timeline.index('id="timeline-batch-2"'):]
    assert f"batch 2</strong> ({second.batch_type})" in batch_two
    assert f"{second.state} → {second.next_state}" in batch_two
    assert f"score {impression.score:.3f}" in batch_two
    assert f"watched_near {impression.score_parts['watched_near']:.3f}" in batch_two
    # The view, its watch time and the transition it caused, between the two batches.
    view_row = timeline[timeline.index(f"on video {viewed}"):timeline.index('id="timeline-batch-2"')]
    assert "watched 30000 ms" in view_row
    if first.next_state != outcome.state:
        assert f"<strong>{first.next_state} → {outcome.state}</strong>" in view_row
    # Cards replaced after the view are marked, and their replacements (stored after their batch).
    batch_at = dict(ServedBatch.objects.filter(session=session).values_list("number", "created_at"))
    impressions = list(Impression.objects.filter(session=session))
    assert timeline.count("<em>withdrawn</em>") == sum(i.withdrawn for i in impressions)
    assert timeline.count("<em>revised by") == sum(i.created_at > batch_at[i.batch_number] for i in impressions)
