"""The database's hashtag evidence (``VideoCatalog.tag_vectors`` / ``shared_tags``) agrees with
the exact in-memory reference on the real trending catalog."""
import numpy as np
import pytest
from django.db import connection

from algorithms.ranking import InMemoryCatalog
from catalog.models import Video
from catalog.selectors import VideoCatalog


@pytest.fixture
def reference(catalog_db):
    # The database reads the catalog's size from the planner's estimate, which an ANALYZE in an
    # earlier, rolled-back test (ingestion embeds and analyses) can leave off by a few rows: make
    # it exact, as the reference's is.
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {Video._meta.db_table}")
    rows = list(Video.objects.filter(embedding__isnull=False).order_by("id").values_list("id", "embedding"))
    tags: dict[int, set[int]] = {}
    for video, tag in Video.hashtags.through.objects.values_list("video_id", "hashtag_id"):
        tags.setdefault(video, set()).add(tag)
    ids = [pk for pk, _ in rows]
    return InMemoryCatalog(ids, np.array([v for _, v in rows]), tags=[tags.get(pk, set()) for pk in ids])


def _popular_tagged_videos(n):
    through = Video.hashtags.through.objects
    return list(through.order_by("video_id").values_list("video_id", flat=True).distinct()[:n])


def test_tag_vectors_match_the_reference(reference):
    ids = _popular_tagged_videos(40)
    from_db = VideoCatalog().tag_vectors(ids)
    expected = reference.tag_vectors(ids)
    assert any(expected) and len(from_db) == len(ids)
    for got, want in zip(from_db, expected):
        assert got.keys() == want.keys()
        for tag in want:
            assert got[tag] == pytest.approx(want[tag], rel=1e-6)


def test_shared_tags_match_the_reference_and_skip_the_excluded(reference):
    ids = _popular_tagged_videos(6)
    weights = {pk: 20.0 - i for i, pk in enumerate(ids)}
    exclude = frozenset(_popular_tagged_videos(60)[30:])
    got = VideoCatalog().shared_tags(weights, 500, exclude)
    want = reference.shared_tags(weights, 500, exclude)
    assert want and dict(got).keys() == dict(want).keys()
    for item, score in want:
        assert dict(got)[item] == pytest.approx(score, rel=1e-6)
    assert not exclude & dict(got).keys() and not weights.keys() & dict(got).keys()
    scores = [score for _, score in got]
    assert scores == sorted(scores, reverse=True)
    assert VideoCatalog().shared_tags(weights, 5, exclude) == got[:5]
