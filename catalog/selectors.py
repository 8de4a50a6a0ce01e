"""Read queries over the catalog's vectors.

``VideoCatalog`` is the PostgreSQL implementation of ``algorithms.batches.Catalog``: the batch
builders ask it for nearest neighbours, random unseen videos and topic members, and it answers
through the HNSW index where it can and exact search where it must.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from django.db import connection, transaction
from pgvector import Vector
from pgvector.django import CosineDistance

from .models import Topic, Video

#: HNSW search breadth (``hnsw.ef_search``). pgvector's default (40) trades recall for speed;
#: 100 keeps recall@10 near 1 up to 100 000 videos (0.99, bench/batch.py) for about 1 ms more
#: per query. Recall falls as the catalog grows (at 1 000 000 videos: 0.961 with 100, 0.985 with
#: 200), so catalogs of ``LARGE_CATALOG`` videos or more search with ``EF_SEARCH_LARGE``.
EF_SEARCH = 100
EF_SEARCH_LARGE = 200
LARGE_CATALOG = 300_000
#: pgvector's ceiling for hnsw.ef_search: an index scan never yields more candidates than this.
MAX_EF_SEARCH = 1000

_TABLE = Video._meta.db_table


def ef_search_for(videos: float) -> int:
    """The HNSW search breadth for a catalog of ``videos`` videos."""
    return EF_SEARCH_LARGE if videos >= LARGE_CATALOG else EF_SEARCH


def set_search_breadth(connection) -> int:
    """Give a new connection the search breadth for the catalog's size (from the planner's
    statistics, which ``embed`` and ``import_trending`` refresh), and remember it on the
    connection: searches at that breadth then need no ``SET`` of their own, a round trip on
    every batch."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [_TABLE])
        row = cursor.fetchone()
        breadth = ef_search_for(row[0] if row and row[0] else 0)
        # Before pgvector is loaded this sets a placeholder, which pgvector adopts when it loads.
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(breadth)])
    connection.hnsw_ef_search = breadth
    return breadth


def _connection_breadth() -> int:
    connection.ensure_connection()  # opening it sets the breadth (``CatalogConfig.ready``)
    return getattr(connection, "hnsw_ef_search", None) or set_search_breadth(connection)


def _vector_literal(vector) -> str:
    return "[" + ",".join(map(str, np.asarray(vector, dtype=np.float32).tolist())) + "]"


def vector_from_bytes(data) -> np.ndarray:
    """A vector read as ``vector_send(column)`` (pgvector's binary form), as native float32.

    Parsing the text form (what Django's ``VectorField`` reads) costs about 0.15 ms per 384-dim
    vector, most of a batch's time when MMR reads a hundred candidates.
    """
    return Vector.from_binary(data).to_numpy().astype(np.float32)


def videos_for_display(ids: Iterable[int]) -> dict[int, Video]:
    """``{id: video}`` with what a feed card or the API shows: creator, music and hashtags
    loaded, the vectors and the embedded document left out (never shown; vectors are costly
    to parse)."""
    return (
        Video.objects.select_related("creator", "music")
        .prefetch_related("hashtags")
        .defer("embedding", "document", "creator__embedding")
        .in_bulk(list(ids))
    )


def nearest_videos(vector, k: int = 10, *, ef_search: int | None = None) -> list[tuple[Video, float]]:
    """The ``k`` videos closest to ``vector`` by cosine, through the HNSW index; ``(video, similarity)``."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search or _connection_breadth())])
        videos = list(
            Video.objects.filter(embedding__isnull=False)
            .annotate(distance=CosineDistance("embedding", vector))
            .order_by("distance")[:k]
        )
    return [(video, 1.0 - video.distance) for video in videos]


class VideoCatalog:
    """The embedded videos, as the batch builders see them (see ``algorithms.batches.Catalog``).

    ``ef_search`` fixes the HNSW search breadth (benchmarks sweep it); by default it follows
    the catalog's size (``ef_search_for``).
    """

    def __init__(self, ef_search: int | None = None):
        self.ef_search = ef_search

    def search(self, query, k: int, exclude: frozenset[int] = frozenset(), min_similarity: float = -1.0):
        """Nearest unseen videos to ``query``: ``[(id, cosine)]``, nearest first (see ``search_many``)."""
        return self.search_many([query], k, exclude, min_similarity)[0]

    def search_many(self, queries, k: int, exclude: frozenset[int] = frozenset(), min_similarity: float = -1.0):
        """For each query, its ``k`` nearest unseen videos: ``[[(id, cosine)]]``, nearest first.

        pgvector 0.6 filters *after* the index scan, so an HNSW query with ``WHERE id NOT IN
        (seen)`` can come back short. Instead we pull neighbours through the index and drop the
        seen ones here, going only as deep as needed: first ``max(ef_search, 2k)``, then
        ``k + len(exclude)`` (with ``hnsw.ef_search`` raised to match, up to pgvector's ceiling).
        Only when that is still short do we search exactly, over a sequential scan. Either way
        a result is short only if the catalog is. All the queries of one depth go to PostgreSQL
        as one statement.
        """
        results: list[list[tuple[int, float]]] = [[] for _ in queries]
        if k <= 0:
            return results
        pending = {i: _vector_literal(query) for i, query in enumerate(queries)}
        breadth = self.ef_search or _connection_breadth()
        for depth in sorted({min(MAX_EF_SEARCH, max(breadth, 2 * k)), min(MAX_EF_SEARCH, k + len(exclude))}):
            if not pending:
                break
            for i, rows in zip(list(pending), self._nearest(list(pending.values()), depth, exclude, ef_search=max(breadth, depth))):
                results[i] = rows[:k]
                if len(results[i]) == k:
                    del pending[i]
        if pending:
            # Exact: sequential scan with a top-N sort. The seen ids are dropped here rather than
            # in SQL, where NOT (id = ANY(array)) is checked linearly for every row.
            for i, rows in zip(list(pending), self._nearest(list(pending.values()), k + len(exclude), exclude, ef_search=None)):
                results[i] = rows[:k]
        return [[(pk, sim) for pk, sim in rows if sim >= min_similarity] for rows in results]

    def _nearest(self, literals: list[str], limit: int, exclude, *, ef_search: int | None) -> list[list[tuple[int, float]]]:
        """For each query vector, its ``limit`` nearest rows minus ``exclude``; through HNSW, or
        exactly if ``ef_search`` is None. One statement: a LATERAL join runs the index scan once
        per query."""
        # A wider breadth, or an exact scan, is for this statement only: the rest of the caller's
        # transaction (the rest of a batch) must not inherit it. savepoint=False: set_config(...,
        # true) only needs *a* transaction, not a nested one.
        if ef_search is None:
            setting = ("enable_indexscan", "off", "on")
        else:
            usual = _connection_breadth()
            setting = None if ef_search == usual else ("hnsw.ef_search", str(ef_search), str(usual))
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            if setting:
                cursor.execute("SELECT set_config(%s, %s, true)", setting[:2])
            cursor.execute(
                f"""SELECT q.n, v.id, v.distance
                      FROM unnest(%s::text[]::vector[]) WITH ORDINALITY AS q(embedding, n)
                     CROSS JOIN LATERAL (
                           SELECT id, embedding <=> q.embedding AS distance FROM {_TABLE}
                            WHERE embedding IS NOT NULL ORDER BY embedding <=> q.embedding LIMIT %s
                           ) AS v
                     ORDER BY q.n, v.distance""",
                [literals, limit],
            )
            rows = cursor.fetchall()
            if setting:
                cursor.execute("SELECT set_config(%s, %s, true)", [setting[0], setting[2]])
        found: list[list[tuple[int, float]]] = [[] for _ in literals]
        for n, pk, distance in rows:
            if pk not in exclude:
                found[n - 1].append((pk, 1.0 - distance))
        return found

    def random_unseen(self, k: int, exclude: frozenset[int], rng: np.random.Generator, popularity_weighted: bool = False):
        """``k`` unseen embedded videos drawn at random (by plays + 1 when ``popularity_weighted``).

        Draws candidate ids from the id range instead of ``ORDER BY random()``, which would read
        the whole table on every batch. Popularity weighting picks among a uniform sample of
        10×k candidates, an approximation that keeps the cost independent of catalog size.
        """
        if k <= 0:
            return []
        with connection.cursor() as cursor:
            # Both ends come from the primary key index; a count(*) would read the whole table.
            cursor.execute(f"SELECT min(id), max(id) FROM {_TABLE}")
            low, high = cursor.fetchone()
        if low is None:
            return []
        # Ids are (nearly) dense, so the id range stands in for the catalog size.
        total = high - low + 1
        pool_size = k * (10 if popularity_weighted else 1)
        pool: dict[int, int] = {}
        for _ in range(4):
            # Sample more the more of the catalog is excluded, so a few rounds are enough.
            draw = min(total, int(4 * pool_size * total / max(1, total - len(exclude))) + 8)
            candidates = rng.integers(low, high + 1, size=draw).tolist()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, play_count FROM {_TABLE} WHERE id = ANY(%s) AND embedding IS NOT NULL",
                    [candidates],
                )
                found = dict(cursor.fetchall())
            for pk in candidates:  # keep the rng's order
                if pk in found and pk not in exclude:
                    pool.setdefault(pk, found[pk])
            if len(pool) >= pool_size:
                break
        if len(pool) < k:
            # Sparse ids or an almost exhausted catalog: read what is left.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, play_count FROM {_TABLE} WHERE embedding IS NOT NULL AND NOT (id = ANY(%s))",
                    [list(exclude)],
                )
                rest = dict(cursor.fetchall())
            ids = sorted(rest)
            order = rng.permutation(len(ids))
            pool = {ids[i]: rest[ids[i]] for i in order}
        ids = list(pool)
        if popularity_weighted and len(ids) > k:
            weights = np.array([pool[pk] + 1.0 for pk in ids])
            chosen = rng.choice(len(ids), size=k, replace=False, p=weights / weights.sum())
            return [ids[i] for i in chosen]
        return ids[:k]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, 0), dtype=np.float32)
        with connection.cursor() as cursor:  # plain SQL: MMR reads these on every batch
            cursor.execute(f"SELECT id, vector_send(embedding) FROM {_TABLE} WHERE id = ANY(%s)", [list(ids)])
            found = dict(cursor.fetchall())
        return np.stack([vector_from_bytes(found[pk]) for pk in ids])

    def topic_members(self, topic: int, k: int, exclude: Iterable[int], rng: np.random.Generator) -> list[int]:
        exclude = set(exclude)
        ids = [pk for pk in Video.objects.filter(topic=topic).order_by("id").values_list("id", flat=True) if pk not in exclude]
        if len(ids) <= k:
            return ids
        return [ids[i] for i in rng.choice(len(ids), size=k, replace=False)]

    def topic_count(self) -> int:
        return Topic.objects.count()

    def topic_centroids(self) -> np.ndarray:
        return np.array(list(Topic.objects.order_by("number").values_list("centroid", flat=True)), dtype=np.float32)
