"""A/B tests on the real database: the split of new sessions, the traffic split page, the
comparison's figures against ones computed by hand, and who may open the pages."""
import uuid
from collections import Counter
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from algorithms import ab_stats
from algorithms.evaluation import random_uuid
from algorithms.models import Algorithm
from catalog.models import Video
from feed import services
from feed.models import FeedSession, Impression, Signal


def set_shares(**by_slug):
    """Shares by slug (others 0), saved through the model as the page does."""
    for algorithm in Algorithm.objects.all():
        algorithm.traffic_share = by_slug.get(algorithm.slug.replace("-", "_"), 0)
        algorithm.save()


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("operator", "operator@example.com", "pw")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


# --- the split -------------------------------------------------------------------------------------

def test_1000_new_sessions_land_within_a_few_points_of_the_shares(catalog_db):
    set_shares(evidence=20, seed_default=30, unique_journeys=50)
    rng = np.random.default_rng(11)
    sessions = [services.start_session(session_id=random_uuid(rng)) for _ in range(1000)]
    counts = Counter(s.algorithm.slug for s in sessions)
    assert set(counts) == {"evidence", "seed-default", "unique-journeys"}
    assert abs(counts["evidence"] / 10 - 20) <= 4
    assert abs(counts["seed-default"] / 10 - 30) <= 4
    assert abs(counts["unique-journeys"] / 10 - 50) <= 4
    # Each session starts in its own algorithm's initial state and keeps the algorithm.
    again = FeedSession.objects.in_bulk([s.id for s in sessions])
    assert all(again[s.id].algorithm_id == s.algorithm_id for s in sessions)


def test_with_all_shares_zero_every_new_session_gets_the_default(catalog_db):
    set_shares()
    default = Algorithm.objects.get(is_default=True)
    assert {services.start_session().algorithm_id for _ in range(30)} == {default.pk}


def test_a_named_algorithm_is_not_drawn(catalog_db):
    set_shares(evidence=100)
    assert services.start_session(algorithm="seed-default").algorithm.slug == "seed-default"


def test_a_logged_in_viewer_keeps_their_algorithm_while_it_has_a_share(catalog_db):
    viewer = User.objects.create_user("viewer", password="pw")
    set_shares(evidence=50, seed_default=50)
    first = services.start_session(viewer=viewer)
    # Another device, later: the viewer's latest session decides, whatever the hash says.
    assert {services.start_session(viewer=viewer).algorithm_id for _ in range(20)} == {first.algorithm_id}
    # Its algorithm leaves the split: the viewer is drawn again (here, the only one left).
    other = "seed_default" if first.algorithm.slug == "evidence" else "evidence"
    set_shares(**{other: 100})
    moved = services.start_session(viewer=viewer)
    assert moved.algorithm.slug == other.replace("_", "-")
    assert services.start_session(viewer=viewer).algorithm_id == moved.algorithm_id


def test_the_feed_page_of_a_new_viewer_uses_the_split(catalog_db, client):
    set_shares(unique_journeys=100)
    assert client.get("/").status_code == 200
    assert FeedSession.objects.get().algorithm.slug == "unique-journeys"


# --- the traffic split page ------------------------------------------------------------------------

def _split_post(shares_by_slug):
    algorithms = list(Algorithm.objects.order_by("-is_default", "name", "id"))
    data = {"form-TOTAL_FORMS": str(len(algorithms)), "form-INITIAL_FORMS": str(len(algorithms)),
            "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000"}
    for i, algorithm in enumerate(algorithms):
        data[f"form-{i}-id"] = str(algorithm.pk)
        data[f"form-{i}-traffic_share"] = str(shares_by_slug.get(algorithm.slug, 0))
    return data


def test_the_split_page_refuses_shares_that_do_not_sum_to_100_and_changes_nothing(staff_client):
    set_shares(evidence=100)
    before = dict(Algorithm.objects.values_list("slug", "traffic_share"))
    response = staff_client.post(reverse("ab-dashboard:traffic"), _split_post({"evidence": 60, "seed-default": 30}))
    assert response.status_code == 200
    assert "Not saved: the shares sum to 90 %; they must sum to 100 %" in response.content.decode()
    assert dict(Algorithm.objects.values_list("slug", "traffic_share")) == before


def test_the_split_page_refuses_a_share_over_100_with_the_field_error(staff_client):
    response = staff_client.post(reverse("ab-dashboard:traffic"), _split_post({"evidence": 150}))
    assert response.status_code == 200
    assert "less than or equal to 100" in response.content.decode()
    assert Algorithm.objects.get(slug="evidence").traffic_share == 0


def test_the_split_page_saves_valid_shares_into_each_algorithms_history(staff_client, staff):
    untouched = Algorithm.objects.get(slug="unique-journeys").history.count()
    page = staff_client.get(reverse("ab-dashboard:traffic"))
    assert page.status_code == 200 and "Save traffic split" in page.content.decode()
    response = staff_client.post(reverse("ab-dashboard:traffic"), _split_post({"evidence": 40, "seed-default": 60}),
                                 follow=True)
    assert "Traffic split saved (2 share(s) changed)" in response.content.decode()
    assert dict(Algorithm.objects.filter(traffic_share__gt=0).values_list("slug", "traffic_share")) == {
        "evidence": 40, "seed-default": 60}
    latest = Algorithm.objects.get(slug="seed-default").history.first()
    change = latest.diff_against(latest.prev_record)
    assert [(c.field, c.old, c.new) for c in change.changes] == [("traffic_share", 0, 60)]
    assert latest.history_user == staff
    # Untouched algorithms get no history row.
    assert Algorithm.objects.get(slug="unique-journeys").history.count() == untouched


def test_staff_without_the_permission_see_the_split_but_cannot_change_it(client, db):
    viewer_staff = User.objects.create_user("looker", password="pw", is_staff=True)
    client.force_login(viewer_staff)
    page = client.get(reverse("ab-dashboard:traffic"))
    assert page.status_code == 200 and "Save traffic split" not in page.content.decode()
    assert client.post(reverse("ab-dashboard:traffic"), _split_post({"evidence": 100})).status_code == 403
    viewer_staff.user_permissions.add(Permission.objects.get(codename="change_algorithm"))
    client.force_login(User.objects.get(pk=viewer_staff.pk))
    assert client.post(reverse("ab-dashboard:traffic"), _split_post({"evidence": 100})).status_code == 302


@pytest.mark.parametrize("name, args", [
    ("traffic", []), ("comparison", []), ("comparison-plot", []), ("simulate", ["evidence"]),
])
def test_the_pages_are_refused_to_viewers_who_are_not_staff(client, db, name, args):
    url = reverse(f"ab-dashboard:{name}", args=args)
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("admin:login"))
    client.force_login(User.objects.create_user("viewer", password="pw"))
    refused = client.get(url)
    assert refused.status_code == 302 and refused["Location"].startswith(reverse("admin:login"))


# --- the comparison --------------------------------------------------------------------------------

def _session(algorithm, impressions, views, *, started=None):
    """A session on ``algorithm`` with ``impressions`` shown and ``views`` as (signal, watched ms)."""
    session = FeedSession.objects.create(algorithm=algorithm, state="0")
    if started is not None:
        FeedSession.objects.filter(pk=session.pk).update(created_at=started)
    videos = list(Video.objects.order_by("id").values_list("id", flat=True)[:impressions + 1])
    for position, video in enumerate(videos[:impressions]):
        Impression.objects.create(session=session, video_id=video, batch_number=1, position=position, state="0",
                                  batch_type="random", source="random")
    # A withdrawn impression was never shown: it is no part of the session's length.
    Impression.objects.create(session=session, video_id=videos[impressions], batch_number=2, position=0, state="0",
                              batch_type="random", source="random", withdrawn=True)
    for (signal, watched), video in zip(views, videos):
        Signal.objects.create(session=session, video_id=video, type=signal, watched_ms=watched, event_id=uuid.uuid4(),
                              state_before="0", state_after="0")
    # An explicit action is not a view.
    Signal.objects.create(session=session, video_id=videos[0], type="LIKE", event_id=uuid.uuid4(),
                          state_before="0", state_after="0")
    return session


def _ci(values):
    values = np.asarray(values, dtype=float)
    m, se = values.mean(), values.std(ddof=1) / np.sqrt(len(values))
    return m, m - 1.959964 * se, m + 1.959964 * se


def test_the_comparison_figures_equal_those_computed_by_hand(staff_client):
    control = Algorithm.objects.get(is_default=True)
    other = Algorithm.objects.get(slug="seed-default")
    _session(control, 3, [("SKIP", 1000), ("HIGH_ATTN", 16000), ("LOW_ATTN", 9500)])
    _session(control, 5, [("SKIP", 2000), ("SKIP", 500), ("HIGH_ATTN", 20000), ("MID_ATTN", 12000)])
    _session(other, 2, [("HIGH_ATTN", 15000), ("SKIP", 800)])
    _session(other, 4, [("HIGH_ATTN", 30000)])
    _session(other, 6, [("SKIP", 1200), ("SKIP", 900)])
    _session(other, 9, [("HIGH_ATTN", 18000)] * 3, started=timezone.now() - timedelta(days=2))  # outside 24h

    response = staff_client.get(reverse("ab-dashboard:comparison"), {"window": "24h"})
    assert response.status_code == 200
    rows = {row["sums"].slug: row for row in response.context["rows"]}
    assert rows[control.slug]["is_control"] and list(rows)[0] == control.slug
    assert rows[control.slug]["sums"].sessions == 2 and rows["seed-default"]["sums"].sessions == 3
    assert rows["unique-journeys"]["sums"].sessions == 0

    def cells(slug):
        return dict(zip([key for key, _, _ in ab_stats.METRICS], rows[slug]["cells"]))

    control_watch = [1.0, 16.0, 9.5, 2.0, 0.5, 20.0, 12.0]
    other_watch = [15.0, 0.8, 30.0, 1.2, 0.9]
    for slug, watch, lengths, skips, longs in [
        (control.slug, control_watch, [3, 5], 3, 2),
        ("seed-default", other_watch, [2, 4, 6], 3, 2),
    ]:
        got = cells(slug)
        m, low, high = _ci(watch)
        assert (got["watch_s"]["value"], got["watch_s"]["low"], got["watch_s"]["high"]) == (
            f"{m:.2f}", f"{low:.2f}", f"{high:.2f}")
        m, low, high = _ci(lengths)
        assert (got["session_length"]["value"], got["session_length"]["low"], got["session_length"]["high"]) == (
            f"{m:.2f}", f"{low:.2f}", f"{high:.2f}")
        n = len(watch)
        for key, hits in (("skip_rate", skips), ("long_view_rate", longs)):
            p = hits / n
            se = np.sqrt(p * (1 - p) / n)
            assert (got[key]["value"], got[key]["low"], got[key]["high"], got[key]["n"]) == (
                f"{100 * p:.1f}", f"{100 * (p - 1.959964 * se):.1f}", f"{100 * (p + 1.959964 * se):.1f}", n)

    # seed-default's watch time against the control's: the difference and its interval, by hand.
    diff = np.mean(other_watch) - np.mean(control_watch)
    se = np.hypot(np.std(other_watch, ddof=1) / np.sqrt(5), np.std(control_watch, ddof=1) / np.sqrt(7))
    got = cells("seed-default")["watch_s"]
    assert (got["difference"], got["diff_low"], got["diff_high"]) == (
        f"{diff:.2f}", f"{diff - 1.959964 * se:.2f}", f"{diff + 1.959964 * se:.2f}")
    assert got["verdict"] == "not yet significant"
    assert "not yet significant" in response.content.decode()

    plot = staff_client.get(reverse("ab-dashboard:comparison-plot"), {"window": "24h"})
    assert plot.status_code == 200 and plot["Content-Type"] == "image/png" and plot.content[:4] == b"\x89PNG"


def test_a_custom_window_counts_only_the_sessions_started_in_it(staff_client):
    other = Algorithm.objects.get(slug="seed-default")
    _session(other, 2, [("SKIP", 700)], started=timezone.now() - timedelta(days=3))
    _session(other, 2, [("SKIP", 700)])
    day = (timezone.now() - timedelta(days=3)).date()
    response = staff_client.get(reverse("ab-dashboard:comparison"),
                                {"window": "custom", "start": f"{day}T00:00", "end": f"{day + timedelta(days=1)}T00:00"})
    assert response.status_code == 200
    assert {r["sums"].slug: r["sums"].sessions for r in response.context["rows"]}["seed-default"] == 1


def test_a_bad_custom_window_is_refused_with_a_clear_message(staff_client):
    response = staff_client.get(reverse("ab-dashboard:comparison"), {"window": "custom", "start": "yesterday", "end": ""})
    assert response.status_code == 400
    assert "the custom window&#x27;s start &#x27;yesterday&#x27; is not a date" in response.content.decode()
