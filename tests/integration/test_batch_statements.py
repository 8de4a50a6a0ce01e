"""The batch's written-out statements (feed.services, catalog.selectors): what they must keep."""
import uuid

import numpy as np
from django.db import connection
from django.test.utils import CaptureQueriesContext

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
