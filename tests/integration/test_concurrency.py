"""Concurrent calls on one session are serialised in the database: nothing is lost."""
import contextlib
import threading
import time
import uuid

from django.db import connection, transaction

from algorithms.models import Algorithm

from feed import services
from feed.models import Signal
from tests.conftest import all_at_once

@contextlib.contextmanager
def session_held(session_id, partner=None):
    """Another request's transaction holding the session's lock until the block ends."""
    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                services._locked_session(session_id, partner)
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        yield
    finally:
        release.set()
        holder.join()


WATCH_TIMES = [16000, 1000, 13000, 9500, 500, 20000]  # HIGH, SKIP, MID, LOW, SKIP, HIGH


def test_two_threads_posting_signals_to_one_session_lose_nothing(small_catalog):
    session = services.start_session()
    # Signals are for served videos: two batches' worth.
    videos = [item.video.pk for _ in range(2) for item in services.next_batch(session.id).items]

    def post(thread_no: int):
        try:
            for i in range(30):
                services.record_view(session.id, video_id=videos[i % 10], event_id=uuid.uuid4(),
                                     watched_ms=WATCH_TIMES[(i + thread_no) % len(WATCH_TIMES)])
                if i % 10 == 9:
                    services.next_batch(session.id)
        finally:
            connection.close()

    _, errors = all_at_once(post, 2)
    assert errors == []
    signals = list(Signal.objects.filter(session=session).order_by("id"))
    assert len(signals) == 60
    # Each transition starts where the previous one ended (batches in between move along BATCH
    # edges, so compare only consecutive signals with no batch between them).
    impressions_at = sorted(session.impressions.values_list("created_at", flat=True).distinct())
    for before, after in zip(signals, signals[1:]):
        batch_between = any(before.created_at < t < after.created_at for t in impressions_at)
        if not batch_between:
            assert after.state_before == before.state_after, (before, after)
    session.refresh_from_db()
    assert session.batch_count == 2 + 6
    assert session.impressions.count() == 40
    assert session.impressions.values("video").distinct().count() == 40


def test_a_locked_session_does_not_block_other_sessions_of_its_algorithm(small_catalog):
    """The session lock covers the session row only, not the algorithm row it joins: a batch
    being built on one session must not hold up signals on every other session of the same
    algorithm (nor an operator's edit of it)."""
    first, second = services.start_session(), services.start_session()
    assert first.algorithm_id == second.algorithm_id
    video = services.next_batch(second.id).items[0].video.pk
    with session_held(first.id):
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '2s'")  # blocked = an error, not a hang
            outcome = services.record_view(second.id, video_id=video, event_id=uuid.uuid4(), watched_ms=16000)
            Algorithm.objects.filter(pk=first.algorithm_id).update(name="edited while a session is locked")
    assert outcome.signal == "HIGH_ATTN"


def test_a_refill_request_sent_twice_at_once_serves_one_batch(small_catalog):
    """A refill request and its resend (after a reconnect) racing each other: both get the same
    batch, and the session moves on by one batch only."""
    from feed import events

    session = services.start_session()
    first = services.next_batch(session.id)

    def refill(_):
        try:
            number, cards, _ = events.batch_after(session.id, first.number)
            return number, [card.video.id for card in cards]
        finally:
            connection.close()

    answers, errors = all_at_once(refill, 2)
    assert errors == []
    assert answers[0] == answers[1]
    assert answers[0][0] == first.number + 1
    session.refresh_from_db()
    assert session.batch_count == first.number + 1


def test_a_partner_call_on_a_session_locked_past_the_timeout_is_a_retryable_503(small_catalog, settings):
    from tests.conftest import partner_client

    settings.FEED_LOCK_TIMEOUT_MS = 200
    client = partner_client("busy")
    session = client.post("/api/v1/sessions/", {}, format="json").json()["id"]
    with session_held(session, partner="busy"):
        busy = client.post(f"/api/v1/sessions/{session}/batch/")
    assert busy.status_code == 503 and busy.json()["code"] == "busy" and int(busy["Retry-After"]) >= 1
    assert client.post(f"/api/v1/sessions/{session}/batch/").status_code == 200  # and again, once it is free


def test_an_event_resent_while_its_first_send_holds_the_session_is_applied_once(small_catalog):
    """A view and its resend (two tabs, two server processes) racing: the resend waits for the
    session's lock while the first send is being applied, then finds its signal (the lookup runs
    after the lock is granted, in the same round trip) and is acknowledged as a duplicate."""
    session = services.start_session()
    video = services.next_batch(session.id).items[0].video.pk
    event_id = uuid.uuid4()
    applying, commit = threading.Event(), threading.Event()
    outcomes = {}

    def first_send():
        try:
            with transaction.atomic():  # the view applied, its transaction not yet committed
                outcomes["first"] = services.record_view(session.id, video_id=video, event_id=event_id,
                                                         watched_ms=16000)
                applying.set()
                commit.wait(30)
        finally:
            connection.close()

    def resend():
        try:
            outcomes["resend"] = services.record_view(session.id, video_id=video, event_id=event_id,
                                                      watched_ms=500)
        finally:
            connection.close()

    first = threading.Thread(target=first_send)
    first.start()
    assert applying.wait(10)
    second = threading.Thread(target=resend)
    second.start()
    try:
        deadline = time.monotonic() + 30
        while not _waiting_for_a_lock() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        commit.set()
        first.join()
        second.join()
    assert outcomes["first"] == services.SignalOutcome("HIGH_ATTN", outcomes["first"].state, duplicate=False)
    assert outcomes["resend"] == services.SignalOutcome("HIGH_ATTN", outcomes["first"].state, duplicate=True)
    assert list(Signal.objects.filter(session=session).values_list("event_id", flat=True)) == [event_id]


def _waiting_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0] > 0
