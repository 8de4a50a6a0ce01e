"""Read queries over the catalog's vectors.

``VideoCatalog`` is the PostgreSQL implementation of ``algorithms.ranking.Catalog``: the batch
builders ask it for nearest neighbours, random unseen videos and topic members, and it answers
through the HNSW index where it can and exact search where it must.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from pgvector import Vector

from algorithms.ranking.catalog import MAX_TAG_SHARE, tag_idf, unit_tag_vector
from tokfeed.rows import field_names, from_row, select_list

from .models import Creator, Hashtag, Music, Topic, Video

#: pgvector's ceiling for hnsw.ef_search: an index scan never yields more candidates than this.
MAX_EF_SEARCH = 1000

_TABLE = Video._meta.db_table
_TAGGED = Video.hashtags.through._meta.db_table


@dataclass(frozen=True)
class SearchBreadth:
    """How wide (``hnsw.ef_search``) the HNSW searches of one batch are.

    A batch with one query (one interest) searches at ``single``. A batch with several (the
    multi-interest states) shares that breadth among them, down to ``floor`` each: every query
    there supplies only a share of the batch, those states add exploration noise (``mu``) that
    moves a query further than the narrower search's error does, and the floor keeps each
    query's recall@10 at the 0.95 target. At 100 000 videos a batch of four queries searched for
    about 12 ms at 100 each, against 7.6 ms at 40 (bench/batch.py).
    """

    single: int
    floor: int

    def per_query(self, queries: int) -> int:
        return max(self.floor, math.ceil(self.single / max(1, queries)))


#: The breadth by catalog size: ``(catalogs of fewer videos than this, breadth)``, the last row
#: for every larger catalog. Recall falls as the catalog grows, so each row is set from recall@10
#: against exact search measured near its upper end (bench/batch.py, synthetic catalogs):
#:
#: =========  =====  =====  =====  =====  =====
#: videos     ef 40  ef 64  100    200    400
#: 100 000    0.980  0.990  1.000
#: 300 000    0.894  0.936  0.976  0.997  0.999
#: 1 000 000  0.786  0.859  0.933  0.967  0.987
#: =========  =====  =====  =====  =====  =====
#:
#: pgvector's default (40) would miss the target from a few hundred thousand videos. Nothing past
#: 1M was measured: larger catalogs search at 400, the breadth that had a margin at 1M.
SEARCH_BREADTHS = (
    (125_000, SearchBreadth(single=100, floor=40)),
    (400_000, SearchBreadth(single=200, floor=100)),
    (1_250_000, SearchBreadth(single=200, floor=200)),
    (None, SearchBreadth(single=400, floor=400)),
)


def breadth_for(videos: float) -> SearchBreadth:
    """The HNSW search breadth for a catalog of ``videos`` videos (``SEARCH_BREADTHS``)."""
    return next(breadth for below, breadth in SEARCH_BREADTHS if below is None or videos < below)


def set_search_breadth(connection) -> SearchBreadth:
    """Give a new connection the search breadth for the catalog's size (from the planner's
    statistics, which ``embed`` and ``import_trending`` refresh), and remember it on the
    connection (``connection.search_breadth``): a batch's one query then needs no ``SET`` of
    its own."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [_TABLE])
        row = cursor.fetchone()
        breadth = breadth_for(row[0] if row and row[0] else 0)
        # Before pgvector is loaded this sets a placeholder, which pgvector adopts when it loads.
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(breadth.single)])
    connection.search_breadth = breadth
    return breadth


def _connection_breadth() -> SearchBreadth:
    connection.ensure_connection()  # opening it sets the breadth (``CatalogConfig.ready``)
    return getattr(connection, "search_breadth", None) or set_search_breadth(connection)


def _vector_literal(vector) -> str:
    return "[" + ",".join(map(str, np.asarray(vector, dtype=np.float32).tolist())) + "]"


def vector_from_bytes(data) -> np.ndarray:
    """A vector read as ``vector_send(column)`` (pgvector's binary form), as native float32.

    Parsing the text form (what Django's ``VectorField`` reads) costs about 0.15 ms per 384-dim
    vector, most of a batch's time when MMR reads a hundred candidates.
    """
    return Vector.from_binary(data).to_numpy().astype(np.float32)


# What a feed card or the API shows of a video: the vectors and the embedded document are left
# out (never shown; vectors are costly to parse).
_DISPLAY_VIDEO = field_names(Video, defer={"embedding", "document"})
_DISPLAY_CREATOR = field_names(Creator, defer={"embedding"})
_DISPLAY_MUSIC = field_names(Music)
_DISPLAY_HASHTAG = field_names(Hashtag, only={"id", "name"})


def videos_for_display(ids: Iterable[int]) -> dict[int, Video]:
    """``{id: video}`` with what a feed card or the API shows: the creator, the music and the
    hashtags (in name order) loaded with the video, in one statement.

    Every batch shows its videos, so the statement is written out: the ORM's version of it
    (``select_related`` plus a hashtag prefetch) cost about 3 ms more per batch, in building
    two queries (bench/batch.py). The videos it returns are the ORM's own: ``video.creator``,
    ``video.music`` and ``video.hashtags.all()`` read what was loaded here.
    """
    ids = list(ids)
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {select_list("v", _DISPLAY_VIDEO)}, {select_list("c", _DISPLAY_CREATOR)},
                       {select_list("m", _DISPLAY_MUSIC)},
                       (SELECT json_agg(json_build_array({select_list("h", _DISPLAY_HASHTAG)}) ORDER BY h.name, h.id)
                          FROM {Video.hashtags.through._meta.db_table} vh
                          JOIN {Hashtag._meta.db_table} h ON h.id = vh.hashtag_id
                         WHERE vh.video_id = v.id)
                  FROM {_TABLE} v
                  JOIN {Creator._meta.db_table} c ON c.id = v.creator_id
                  LEFT JOIN {Music._meta.db_table} m ON m.id = v.music_id
                 WHERE v.id = ANY(%s)""",
            [ids],
        )
        rows = cursor.fetchall()
    creator_end = len(_DISPLAY_VIDEO) + len(_DISPLAY_CREATOR)
    music_end = creator_end + len(_DISPLAY_MUSIC)
    videos = {}
    for row in rows:
        video = from_row(Video, _DISPLAY_VIDEO, row[:len(_DISPLAY_VIDEO)])
        video.creator = from_row(Creator, _DISPLAY_CREATOR, row[len(_DISPLAY_VIDEO):creator_end])
        video.music = None if row[creator_end] is None else from_row(Music, _DISPLAY_MUSIC, row[creator_end:music_end])
        _set_prefetched_hashtags(video, [from_row(Hashtag, _DISPLAY_HASHTAG, tag) for tag in row[music_end] or ()])
        videos[video.pk] = video
    return videos


def _set_prefetched_hashtags(video: Video, hashtags: list[Hashtag]) -> None:
    # What prefetch_related("hashtags") leaves on a video (django.db.models.query.prefetch_one_level):
    # the related manager's queryset, already evaluated, under the relation's name.
    queryset = video.hashtags.get_queryset()
    queryset._result_cache = hashtags
    queryset._prefetch_done = True
    video._prefetched_objects_cache = {"hashtags": queryset}


class VideoCatalog:
    """The embedded videos, as the batch builders see them (see ``algorithms.ranking.Catalog``).

    ``ef_search`` fixes the HNSW search breadth of every query (benchmarks sweep it); by
    default it follows the catalog's size and the number of queries (``SearchBreadth``). With
    ``vectors_with_search`` the searches also read the vectors of the videos they find and keep
    them, so that ``vectors`` of those (what MMR asks for next) costs no statement of its own;
    one instance then serves one batch. ``creators`` of those videos are kept the same way.
    """

    def __init__(self, ef_search: int | None = None, *, vectors_with_search: bool = False):
        self.ef_search = ef_search
        self.vectors_with_search = vectors_with_search
        self._found_vectors: dict[int, bytes] = {}
        self._creators: dict[int, int | None] = {}
        self._size: int | None = None  # the catalog's size, for tag rarity (read once)

    def search(self, query, k: int, exclude: frozenset[int] = frozenset(), min_similarity: float = -1.0):
        """Nearest unseen videos to ``query``: ``[(id, cosine)]``, nearest first (see ``search_many``)."""
        return self.search_many([query], k, exclude, min_similarity)[0]

    def search_many(self, queries, k: int, exclude: frozenset[int] = frozenset(), min_similarity: float = -1.0):
        """For each query, its ``k`` nearest unseen videos: ``[[(id, cosine)]]``, nearest first.

        pgvector 0.6 filters *after* the index scan, so an HNSW query with ``WHERE id NOT IN
        (seen)`` can come back short. Instead we pull neighbours through the index and drop the
        seen ones after it, going only as deep as needed: first ``max(ef_search, 2k)``, then
        ``k + len(exclude)`` (with ``hnsw.ef_search`` raised to match, up to pgvector's ceiling).
        Only when that is still short do we search exactly, over a sequential scan. Either way
        a result is short only if the catalog is. All the queries of one depth go to PostgreSQL
        as one statement.
        """
        results: list[list[tuple[int, float]]] = [[] for _ in queries]
        if k <= 0:
            return results
        pending = {i: _vector_literal(query) for i, query in enumerate(queries)}
        usual = _connection_breadth()
        breadth = self.ef_search or usual.per_query(len(queries))
        exclude = list(exclude)
        for depth in sorted({min(MAX_EF_SEARCH, max(breadth, 2 * k)), min(MAX_EF_SEARCH, k + len(exclude))}):
            if not pending:
                break
            found = self._nearest(list(pending.values()), k, depth, exclude, ef_search=max(breadth, depth),
                                  usual=usual.single)
            for i, rows in zip(list(pending), found):
                results[i] = rows
                if len(rows) == k:
                    del pending[i]
        if pending:
            # Exact: sequential scan with a top-N sort.
            found = self._nearest(list(pending.values()), k, k + len(exclude), exclude, ef_search=None,
                                  usual=usual.single)
            for i, rows in zip(list(pending), found):
                results[i] = rows
        return [[(pk, sim) for pk, sim in rows if sim >= min_similarity] for rows in results]

    def _nearest(self, literals: list[str], k: int, depth: int, exclude: list[int], *,
                 ef_search: int | None, usual: int) -> list[list[tuple[int, float]]]:
        """For each query vector, the first ``k`` of its ``depth`` nearest rows that are not in
        ``exclude``; through HNSW, or exactly if ``ef_search`` is None. ``usual`` is the
        connection's own breadth. One statement: a LATERAL join runs the index scan once per
        query."""
        # Another breadth, or an exact scan, is for this statement only: the rest of the
        # caller's transaction (the rest of a batch) must not inherit it. The setting, the search
        # and the reset go in one message (client-side binding sends it as a simple query), one
        # round trip; savepoint=False: set_config(..., true) only needs *a* transaction.
        if ef_search is None:
            setting = ("enable_indexscan", "off", "on")
        else:
            setting = None if ef_search == usual else ("hnsw.ef_search", str(ef_search), str(usual))
        vector = "vector_send(embedding), creator_id" if self.vectors_with_search else "NULL, NULL"
        # The seen ids are dropped after the index scan (a WHERE inside it would make pgvector
        # 0.6 return fewer rows); PostgreSQL checks them against a hash of the array.
        search = f"""SELECT n, id, distance, {vector}
                       FROM (SELECT q.n, v.id, v.distance, v.embedding, v.creator_id,
                                    row_number() OVER (PARTITION BY q.n ORDER BY v.distance, v.id) AS rank
                               FROM unnest(%s::text[]::vector[]) WITH ORDINALITY AS q(embedding, n)
                              CROSS JOIN LATERAL (
                                    SELECT id, embedding, creator_id, embedding <=> q.embedding AS distance FROM {_TABLE}
                                     WHERE embedding IS NOT NULL ORDER BY embedding <=> q.embedding LIMIT %s
                                    ) AS v
                              WHERE NOT (v.id = ANY(%s::bigint[]))) AS ranked
                      WHERE rank <= %s
                      ORDER BY n, rank"""
        params = [literals, depth, exclude, k]
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            if setting:
                name, value, reset = setting
                cursor.execute(f"SELECT set_config(%s, %s, true); {search}; SELECT set_config(%s, %s, true)",
                               [name, value, *params, name, reset])
                cursor.nextset()
            else:
                cursor.execute(search, params)
            rows = cursor.fetchall()
        found: list[list[tuple[int, float]]] = [[] for _ in literals]
        for n, pk, distance, vector, creator in rows:
            found[n - 1].append((pk, 1.0 - distance))
            if vector is not None:
                self._found_vectors[pk] = vector
                self._creators[pk] = creator
        return found

    def random_unseen(self, k: int, exclude: frozenset[int], rng: np.random.Generator, popularity_weighted: bool = False):
        """``k`` unseen embedded videos drawn at random (by plays + 1 when ``popularity_weighted``).

        Draws candidate ids from the id range instead of ``ORDER BY random()``, which would read
        the whole table on every batch. Popularity weighting picks among a uniform sample of
        10×k candidates, an approximation that keeps the cost independent of catalog size.
        """
        if k <= 0:
            return []
        pool_size = k * (10 if popularity_weighted else 1)
        pool: dict[int, int] = {}
        # The first draw assumes little of the catalog is excluded; the id range it learns
        # sizes the next draws, so a few rounds are enough even near the end of the catalog.
        draw = 4 * pool_size + 8
        for _ in range(4):
            bounds, candidates, found = self._draw_ids(rng.random(draw))
            if bounds is None:
                return []
            for pk in candidates:  # keep the rng's order
                if pk in found and pk not in exclude:
                    pool.setdefault(pk, found[pk])
            if len(pool) >= pool_size:
                break
            # Ids are (nearly) dense, so the id range stands in for the catalog size.
            total = bounds[1] - bounds[0] + 1
            draw = min(total, int(4 * pool_size * total / max(1, total - len(exclude))) + 8)
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

    @staticmethod
    def _draw_ids(fractions: np.ndarray):
        """``((min id, max id) or None for an empty catalog, [candidate ids], {id: plays} of the
        candidates that are embedded videos)``: each fraction in [0, 1) picks the id at that
        point of the id range. One statement; both ends of the range come from the primary key
        index (a count(*) would read the whole table)."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"""WITH bounds AS (SELECT min(id) AS low, max(id) AS high FROM {_TABLE}),
                         drawn AS (SELECT b.low + floor(d.fraction * (b.high - b.low + 1))::bigint AS id, d.n
                                     FROM bounds b, unnest(%s::float8[]) WITH ORDINALITY AS d(fraction, n))
                    SELECT b.low, b.high, d.id, v.play_count
                      FROM bounds b
                      LEFT JOIN drawn d ON true
                      LEFT JOIN {_TABLE} v ON v.id = d.id AND v.embedding IS NOT NULL
                     ORDER BY d.n""",
                [fractions.tolist()],
            )
            rows = cursor.fetchall()
        if not rows or rows[0][0] is None:
            return None, [], {}
        bounds = rows[0][:2]
        candidates = [pk for _, _, pk, _ in rows]
        found = {pk: plays for _, _, pk, plays in rows if plays is not None}
        return bounds, candidates, found

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, 0), dtype=np.float32)
        self._read_vectors(ids)
        return np.stack([vector_from_bytes(self._found_vectors[pk]) for pk in ids])

    def creators(self, ids: Sequence[int]) -> list[int | None]:
        self._read_vectors([pk for pk in ids if pk not in self._creators])
        return [self._creators.get(pk) for pk in ids]

    def _read_vectors(self, ids: Iterable[int]) -> None:
        """Keep the vectors and creators of ``ids`` (those not kept yet), in one statement: MMR
        and evidence ranking read them on every batch, so the SQL is written out."""
        missing = [pk for pk in set(ids) if pk not in self._found_vectors]
        if missing:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT id, vector_send(embedding), creator_id FROM {_TABLE} WHERE id = ANY(%s)",
                               [missing])
                for pk, vector, creator in cursor.fetchall():
                    self._found_vectors[pk] = vector
                    self._creators[pk] = creator

    # Hashtags as evidence (``tag_weight``): two statements, written out for the reason the
    # searches are (every batch of a state that weighs tags runs them). A tag's rarity needs the
    # catalog's size: the planner's row estimate, which costs nothing, or a count where the
    # table was never analysed.

    def _catalog_size(self, cursor) -> int:
        if self._size is None:
            cursor.execute(f"SELECT reltuples::bigint FROM pg_class WHERE oid = '{_TABLE}'::regclass")
            estimate = cursor.fetchone()[0]
            if estimate is None or estimate <= 0:
                cursor.execute(f"SELECT count(*) FROM {_TABLE}")
                estimate = cursor.fetchone()[0]
            self._size = int(estimate)
        return self._size

    def tag_vectors(self, ids: Sequence[int]) -> list[dict[int, float]]:
        """Each video's hashtags, weighted by rarity (see ``algorithms.ranking.Catalog``)."""
        if not len(ids):
            return []
        with connection.cursor() as cursor:
            size = self._catalog_size(cursor)
            cursor.execute(
                f"""WITH mine AS (SELECT video_id, hashtag_id FROM {_TAGGED} WHERE video_id = ANY(%s))
                    SELECT m.video_id, m.hashtag_id, d.n
                      FROM mine m
                      JOIN (SELECT hashtag_id, count(*) AS n FROM {_TAGGED}
                             WHERE hashtag_id IN (SELECT hashtag_id FROM mine) GROUP BY hashtag_id) d
                        ON d.hashtag_id = m.hashtag_id""",
                [list(set(ids))],
            )
            rows = cursor.fetchall()
        weights: dict[int, dict[int, float]] = {}
        for video, tag, n in rows:
            weights.setdefault(video, {})[tag] = tag_idf(n, size)
        vectors = {video: unit_tag_vector(w) for video, w in weights.items()}
        return [vectors.get(pk, {}) for pk in ids]

    def shared_tags(self, weights: dict[int, float], k: int, exclude: frozenset[int]) -> list[tuple[int, float]]:
        """Unseen embedded videos tagged like ``weights``' videos (see ``algorithms.ranking.Catalog``)."""
        if k <= 0 or not weights:
            return []
        with connection.cursor() as cursor:
            size = self._catalog_size(cursor)
            cursor.execute(
                f"""WITH mine AS (SELECT t.hashtag_id, sum(w.weight) AS weight
                                    FROM {_TAGGED} t
                                    JOIN unnest(%s::bigint[], %s::float8[]) AS w(video_id, weight)
                                      ON w.video_id = t.video_id
                                   GROUP BY t.hashtag_id),
                         rarity AS (SELECT t.hashtag_id, ln(%s::float8 / count(*)) AS idf
                                      FROM {_TAGGED} t WHERE t.hashtag_id IN (SELECT hashtag_id FROM mine)
                                     GROUP BY t.hashtag_id
                                    HAVING count(*) BETWEEN 2 AND %s)
                    SELECT t.video_id, sum(m.weight * r.idf) AS score
                      FROM {_TAGGED} t
                      JOIN mine m ON m.hashtag_id = t.hashtag_id
                      JOIN rarity r ON r.hashtag_id = t.hashtag_id
                      JOIN {_TABLE} v ON v.id = t.video_id AND v.embedding IS NOT NULL
                     WHERE NOT (t.video_id = ANY(%s)) AND r.idf > 0
                     GROUP BY t.video_id
                     ORDER BY score DESC, t.video_id
                     LIMIT %s""",
                [list(weights), list(weights.values()), max(size, 1), max(2, int(MAX_TAG_SHARE * size)),
                 list(set(exclude) | set(weights)), k],
            )
            return [(pk, float(score)) for pk, score in cursor.fetchall()]

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


# --- "More like this" for the partner API (catalog/api.py) --------------------------------------
# (Imported here, with the functions that need them, so that additions to this module stay apart.)
from django.db.models.expressions import RawSQL  # noqa: E402

from tokfeed.errors import NotFound, ServiceError  # noqa: E402


class NotEmbedded(ServiceError):
    """The video or creator exists but has no vector yet (its embedding job has not run)."""

    status = 409
    code = "not_embedded"


def _vector_of(model, pk: int) -> bytes:
    """The vector of row ``pk`` in pgvector's binary form; ``NotFound`` if there is no such row,
    ``NotEmbedded`` if it has no vector yet."""
    rows = list(model.objects.filter(pk=pk).values_list(RawSQL("vector_send(embedding)", []), flat=True))
    name = model._meta.verbose_name
    if not rows:
        raise NotFound(f"there is no {name} with id {pk}")
    if rows[0] is None:
        raise NotEmbedded(f"{name} {pk} has no embedding yet: try again once its embedding job has run")
    return rows[0]


def similar_videos(video_id: int, limit: int) -> list[tuple[int, float]]:
    """The ``limit`` videos nearest to video ``video_id`` (itself excluded): ``[(id, cosine)]``,
    most similar first. The feed's own search (``VideoCatalog.search``: HNSW, over-fetching past
    the excluded id, exact search if that comes back short), so the API and the feed agree."""
    vector = vector_from_bytes(_vector_of(Video, video_id))
    return VideoCatalog().search(vector, limit, exclude=frozenset({video_id}))


_CREATOR_TABLE = Creator._meta.db_table


def similar_creators(creator_id: int, limit: int) -> list[tuple[int, float]]:
    """The ``limit`` creators nearest to creator ``creator_id`` (itself excluded), by the pooled
    creator vectors (``catalog.embedding_jobs``): ``[(id, cosine)]``, most similar first.

    Written out for the reason ``VideoCatalog._nearest`` is (pgvector's HNSW scan with a
    per-statement ``hnsw.ef_search``), over the creators' own index, which that query does not
    cover. Only the creator itself is excluded, so asking the index for ``limit + 1`` rows at a
    breadth of at least that suffices; should it still come back short (HNSW can, on a small or
    skewed graph), the search is repeated exactly, so a result is short only if the catalog is.
    """
    if limit <= 0:
        return []
    query = Vector.from_binary(_vector_of(Creator, creator_id)).to_text()
    depth = limit + 1
    usual = _connection_breadth().single
    search = f"""SELECT id, 1 - (embedding <=> %s::vector) FROM {_CREATOR_TABLE}
                  WHERE embedding IS NOT NULL ORDER BY embedding <=> %s::vector, id LIMIT %s"""
    rows: list[tuple[int, float]] = []
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # First through the index, then (if short) exactly; both settings are for this
        # transaction only and put back after.
        for name, value in (("hnsw.ef_search", str(min(MAX_EF_SEARCH, max(usual, depth)))),
                            ("enable_indexscan", "off")):
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
            cursor.execute(search, [query, query, depth])
            rows = [(pk, similarity) for pk, similarity in cursor.fetchall() if pk != creator_id][:limit]
            if len(rows) == limit:
                break
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, true), set_config('enable_indexscan', 'on', true)",
                       [str(usual)])
    return rows
