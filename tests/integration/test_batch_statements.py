"""The batch's written-out statements (feed.services, catalog.selectors): what they must keep."""
import contextlib
import uuid

import numpy as np
from django.db import connection
from django.test.utils import CaptureQueriesContext

from algorithms.vectors import one_blas_thread
from catalog.models import Video
from catalog.selectors import VideoCatalog
from feed import services
from feed.models import Impression


def _synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_a_batch_does_not_wait_for_the_wal_flush(catalog_db):
    # The test's own transaction is still open after next_batch: the setting it made is visible.
    session = services.start_session()
    assert _synchronous_commit() == "on"
    services.next_batch(session.id)
    assert _synchronous_commit() == "off"


def test_a_signal_waits_for_the_wal_flush(catalog_db):
    session = services.start_session()
    video = Video.objects.first()
    # Served (signals are for served videos), without a batch: its setting would stay in the
    # test's one transaction.
    Impression.objects.create(session=session, video=video, batch_number=1, position=0, state="0",
                              batch_type="random", source="random")
    services.record_view(session.id, video_id=video.pk, event_id=uuid.uuid4(), watched_ms=20_000)
    assert _synchronous_commit() == "on"


def test_vectors_of_searched_videos_come_with_the_search(catalog_db):
    ids, vectors = zip(*Video.objects.order_by("id").values_list("id", "embedding"))
    stored = dict(zip(ids, np.array(vectors, dtype=np.float32)))
    catalog = VideoCatalog(vectors_with_search=True)
    found = [pk for pk, _ in catalog.search(stored[ids[0]], 10)]
    other = next(pk for pk in ids if pk not in found)

    with CaptureQueriesContext(connection) as queries:
        read = catalog.vectors(found)
    assert len(queries) == 0
    np.testing.assert_array_equal(read, np.array([stored[pk] for pk in found]))

    with CaptureQueriesContext(connection) as queries:
        read = catalog.vectors([other, found[0]])
    assert len(queries) == 1
    np.testing.assert_array_equal(read, np.array([stored[other], stored[found[0]]]))


def test_random_draws_reach_both_ends_of_the_id_range(catalog_db):
    ids = sorted(Video.objects.filter(embedding__isnull=False).values_list("id", flat=True))
    left = {ids[0], ids[len(ids) // 2], ids[-1]}
    seen = frozenset(ids) - left
    rng = np.random.default_rng(3)

    assert set(VideoCatalog().random_unseen(3, seen, rng)) == left
    assert set(VideoCatalog().random_unseen(3, seen, rng, popularity_weighted=True)) == left
    assert VideoCatalog().random_unseen(3, frozenset(ids), rng) == []


def test_random_draws_are_spread_over_the_catalog(catalog_db):
    ids = sorted(Video.objects.filter(embedding__isnull=False).values_list("id", flat=True))
    rng = np.random.default_rng(4)
    drawn = [pk for _ in range(40) for pk in VideoCatalog().random_unseen(5, frozenset(), rng)]
    assert len(set(drawn)) > 150
    assert min(drawn) < ids[len(ids) // 10] and max(drawn) > ids[-len(ids) // 10]


def test_random_draws_from_an_empty_catalog_are_empty(catalog_db):
    Video.objects.all().delete()
    assert VideoCatalog().random_unseen(5, frozenset(), np.random.default_rng(0)) == []


def _evidence_session_with_history(seed: int):
    """A session on the default algorithm ("evidence") after three batches of long watches and
    skips (its signals, hashtags included, are what the next batch weighs)."""
    session = services.start_session(algorithm="evidence", session_id=uuid.UUID(int=seed))
    rng = np.random.default_rng(seed)
    for _ in range(3):
        for item in services.next_batch(session.id).items:
            watched = item.video.duration_s * 1000 * (2 if rng.random() < 0.5 else 0) + 500
            services.record_view(session.id, video_id=item.video.pk, event_id=uuid.UUID(int=int(rng.integers(2**62))),
                                 watched_ms=min(watched, services.max_watched_ms(item.video.duration_s)))
    return session


def test_an_evidence_batch_reads_what_it_scores_with_the_statements_that_find_it(catalog_db):
    session = _evidence_session_with_history(20261204)
    with CaptureQueriesContext(connection) as queries:
        batch = services.next_batch(session.id)
    assert len(batch.items) == 5
    statements = [q["sql"] for q in queries]
    # The searches, the tag recall and the random draws bring their videos' vectors, creators
    # and hashtags, the history those of the signals' videos, each with the catalog's size.
    assert not [sql for sql in statements if "WHERE id = ANY" in sql and "vector_send" in sql], statements
    assert not [sql for sql in statements if sql.lstrip().startswith("SELECT reltuples")], statements
    assert not [sql for sql in statements if sql.lstrip().startswith("SELECT v.id, ARRAY(SELECT ARRAY[vh.hashtag_id")], \
        statements


def test_reading_vectors_with_the_recalls_changes_no_batch(catalog_db):
    # The same candidates, in the same order, with the same scores, as a catalog that reads
    # every vector and creator by id, for the same rng and evidence; on one BLAS thread or more.
    from algorithms.ranking import build_batch
    from algorithms.selectors import load_blueprint
    from feed.models import FeedSession

    session = _evidence_session_with_history(20261205)
    stored = FeedSession.objects.select_related("algorithm").get(pk=session.id)
    blueprint = load_blueprint(stored.algorithm)
    compared = 0
    for state in blueprint.states:
        params = state.batch_params
        last_n = max(params.last_n, params.score_last_n)
        signals, seen, recent = services._history(stored, blueprint, last_n)
        assert any(s.polarity > 0 for s in signals) and any(s.polarity < 0 for s in signals)
        for seed in range(3):
            batches = []
            reading = VideoCatalog(vectors_with_search=True, vectors_with_draws=True, tags_with_reads=True)
            read_signals, *rest = services._history(stored, blueprint, last_n, tags_for=reading)
            assert [s.video for s in read_signals] == [s.video for s in signals] and rest == [seen, recent]
            for catalog, threads in ((VideoCatalog(), contextlib.nullcontext()), (reading, one_blas_thread())):
                with threads:  # as next_batch builds (one BLAS thread), or not
                    batches.append([(c.id, c.source, c.similarity, c.score, dict(c.parts), c.creator)
                                    for c in build_batch(state.batch_type, params, catalog, signals, 5, seen,
                                                         np.random.default_rng(seed), recent_creators=recent)])
            assert batches[0] == batches[1] and len(batches[0]) == 5
            compared += 1
    assert compared >= 6


def test_vectors_of_drawn_videos_come_with_the_draw(catalog_db):
    ids, vectors = zip(*Video.objects.order_by("id").values_list("id", "embedding"))
    stored = dict(zip(ids, np.array(vectors, dtype=np.float32)))
    creators = dict(Video.objects.values_list("id", "creator_id"))
    seen = frozenset(ids[::3])
    for popularity_weighted in (False, True):
        plain = VideoCatalog().random_unseen(40, seen, np.random.default_rng(6), popularity_weighted)
        catalog = VideoCatalog(vectors_with_draws=True)
        drawn = catalog.random_unseen(40, seen, np.random.default_rng(6), popularity_weighted)
        assert drawn == plain and not seen & set(drawn)

        with CaptureQueriesContext(connection) as queries:
            read = catalog.vectors(drawn)
            read_creators = catalog.creators(drawn)
        assert len(queries) == 0
        np.testing.assert_array_equal(read, np.array([stored[pk] for pk in drawn]))
        assert read_creators == [creators[pk] for pk in drawn]


def test_a_view_is_two_statements_between_begin_and_commit(catalog_db):
    """Every view waits on each round trip to PostgreSQL: the lock with the lookup of an earlier
    signal and of the served video, then the write (``services._record``)."""
    session = services.start_session()
    video = services.next_batch(session.id).items[0].video.pk
    with CaptureQueriesContext(connection) as queries:
        outcome = services.record_view(session.id, video_id=video, event_id=uuid.uuid4(), watched_ms=16000)
    assert outcome.signal == "HIGH_ATTN" and not outcome.duplicate
    # Inside the test's transaction BEGIN and COMMIT are a savepoint and its release.
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SAVEPOINT", "SELECT", "WITH", "RELEASE"]
