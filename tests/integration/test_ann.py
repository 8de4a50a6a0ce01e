import numpy as np
from django.db import connection

from catalog.models import Video
from catalog.selectors import VideoCatalog


def _all_vectors():
    ids, vectors = zip(*Video.objects.values_list("id", "embedding"))
    return np.array(ids), np.array(vectors)


def _index_scans() -> int:
    """Scans of the HNSW index in this transaction so far."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_get_xact_numscans('video_embedding_hnsw'::regclass)")
        return cursor.fetchone()[0]


def test_search_uses_the_hnsw_index_once_per_query(catalog_db):
    ids, vectors = _all_vectors()
    before = _index_scans()
    VideoCatalog().search_many([vectors[0], vectors[1], vectors[2]], 10)
    assert _index_scans() - before == 3


def test_ann_agrees_with_exact_search_on_the_top_10(catalog_db):
    ids, vectors = _all_vectors()
    rng = np.random.default_rng(7)
    queries = [vectors[i] for i in rng.choice(len(ids), 15, replace=False)]
    # Queries between videos, not just on them.
    queries += [(vectors[i] + vectors[j]) / np.linalg.norm(vectors[i] + vectors[j]) for i, j in rng.choice(len(ids), (15, 2))]
    row_of = {video_id: row for row, video_id in enumerate(ids)}
    for query in queries:
        sims = vectors @ query
        exact = np.sort(sims)[::-1][:10]
        found = [pk for pk, _ in VideoCatalog().search(query, 10)]
        # Same similarities in the same order; videos with identical documents tie, and any of
        # the tied ids is a right answer.
        np.testing.assert_allclose(sims[[row_of[i] for i in found]], exact, atol=1e-5)


def test_search_reports_cosine_similarity(catalog_db):
    video = Video.objects.first()
    (top, similarity), *_ = VideoCatalog().search(np.asarray(video.embedding), 3)
    assert abs(similarity - 1.0) < 1e-5
    assert top == video.id or np.allclose(Video.objects.get(pk=top).embedding, video.embedding)


def test_search_past_a_long_history_is_full_and_exact(catalog_db):
    ids, vectors = _all_vectors()
    query = vectors[0]
    order = ids[np.argsort(-(vectors @ query), kind="stable")]
    catalog = VideoCatalog()
    for seen_count in (50, 985, 995):  # shallow pull, deep pull, exact fallback (k + seen > 1000)
        seen = frozenset(order[:seen_count].tolist())
        found = catalog.search(query, 10, seen)
        assert len(found) == min(10, len(ids) - seen_count)
        assert not seen & {pk for pk, _ in found}
        row_of = {pk: r for r, pk in enumerate(ids)}
        expected = np.sort(vectors[[row_of[pk] for pk in order[seen_count:]]] @ query)[::-1][: len(found)]
        np.testing.assert_allclose([sim for _, sim in found], expected, atol=1e-5)


def test_search_many_answers_each_query_as_search_does_at_every_depth(catalog_db):
    """Several queries in one statement: each answer is its own query's, even when one query
    needs the exact fallback and another is served by the first, shallow pull."""
    ids, vectors = _all_vectors()
    catalog = VideoCatalog()
    near, far = vectors[0], -vectors[0]
    # The videos nearest to `near` are seen: `near` must go deep, `far` is answered at once.
    seen = frozenset(ids[np.argsort(-(vectors @ near), kind="stable")][:995].tolist())
    many = catalog.search_many([near, far, near], 10, seen)
    assert many == [catalog.search(near, 10, seen), catalog.search(far, 10, seen), catalog.search(near, 10, seen)]
    row_of = {pk: r for r, pk in enumerate(ids)}
    for query, found in zip([near, far], many):
        assert not seen & {pk for pk, _ in found}
        sims = vectors[[row_of[pk] for pk in ids if pk not in seen]] @ query
        np.testing.assert_allclose([sim for _, sim in found], np.sort(sims)[::-1][: len(found)], atol=1e-5)
    assert len(many[0]) == min(10, len(ids) - len(seen))


def test_vectors_are_read_exactly_in_the_order_asked(catalog_db):
    rows = list(Video.objects.order_by("-id").values_list("id", "embedding")[:5])
    asked = [rows[3][0], rows[0][0], rows[3][0], rows[1][0]]
    expected = np.array([dict(rows)[pk] for pk in asked], dtype=np.float32)
    found = VideoCatalog().vectors(asked)
    assert found.dtype == np.float32 and found.shape == (4, 384)
    np.testing.assert_array_equal(found, expected)


def test_search_breadth_follows_the_catalog_size(catalog_db):
    from catalog.selectors import SEARCH_BREADTHS, breadth_for, set_search_breadth

    (small_below, small), (_, middle), *_, (_, largest) = SEARCH_BREADTHS
    assert breadth_for(0) == breadth_for(small_below - 1) == small
    assert breadth_for(small_below) == middle
    assert breadth_for(10**9) == largest
    singles = [breadth.single for _, breadth in SEARCH_BREADTHS]
    floors = [breadth.floor for _, breadth in SEARCH_BREADTHS]
    assert singles == sorted(singles) and floors == sorted(floors)  # never narrower for a larger catalog

    def session_breadth():
        with connection.cursor() as cursor:
            cursor.execute("SHOW hnsw.ef_search")
            return int(cursor.fetchone()[0])

    # A connection opens with the breadth for the real catalog (1000 videos).
    assert session_breadth() == connection.search_breadth.single == small.single
    with connection.cursor() as cursor:  # the planner's idea of the size, as after importing 1M
        cursor.execute("UPDATE pg_class SET reltuples = 1000000 WHERE oid = 'catalog_video'::regclass")
    try:
        assert set_search_breadth(connection) == breadth_for(1_000_000) != small
        assert session_breadth() == breadth_for(1_000_000).single
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE catalog_video")
        set_search_breadth(connection)
    assert session_breadth() == small.single


def test_several_queries_share_the_breadth_down_to_a_floor():
    from catalog.selectors import SearchBreadth

    breadth = SearchBreadth(single=100, floor=40)
    assert breadth.per_query(1) == breadth.per_query(0) == 100
    assert breadth.per_query(2) == 50
    assert breadth.per_query(3) == breadth.per_query(4) == breadth.per_query(40) == 40
    assert SearchBreadth(single=200, floor=200).per_query(4) == 200


def test_each_of_several_queries_searches_at_its_share_of_the_breadth(catalog_db):
    """The breadth a shared search sets is in force for its statement, and only for it."""
    from django.test.utils import CaptureQueriesContext

    ids, vectors = _all_vectors()
    with CaptureQueriesContext(connection) as queries:
        found = VideoCatalog().search_many([vectors[0], vectors[1], vectors[2], vectors[3]], 10)
    assert all(abs(hits[0][1] - 1.0) < 1e-5 for hits in found)  # each query found itself (or a twin)
    share = connection.search_breadth.per_query(4)
    assert len(queries) == 1
    assert f"set_config('hnsw.ef_search', '{share}', true)" in queries[0]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        assert cursor.fetchone()[0] == str(connection.search_breadth.single)


def test_deep_and_exact_searches_change_settings_for_their_own_statement_only(catalog_db):
    """The rest of a batch's transaction keeps the usual breadth and its index scans."""
    ids, vectors = _all_vectors()
    order = ids[np.argsort(-(vectors @ vectors[0]), kind="stable")]
    for seen_count in (300, 995):  # the deep pull (k + 300 > ef_search), the exact fallback
        found = VideoCatalog().search(vectors[0], 10, frozenset(order[:seen_count].tolist()))
        assert len(found) == min(10, len(ids) - seen_count)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('enable_indexscan')")
            assert cursor.fetchone() == (str(connection.search_breadth.single), "on")
