"""Read queries over the catalog's vectors (and partners' ingestion jobs, at the end).

``VideoCatalog`` is the PostgreSQL implementation of ``algorithms.ranking.Catalog``: the batch
builders ask it for nearest neighbours, random unseen videos and topic members, and it answers
through the HNSW index where it can and exact search where it must.
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from pgvector import Vector

from algorithms.ranking.catalog import MAX_TAG_SHARE, tag_idf, unit_tag_vector
from tokfeed.rows import array_literal, field_names, from_row, prepared_rows, select_list

from .models import Creator, Hashtag, IngestJob, Music, Topic, Video

#: pgvector's ceiling for hnsw.ef_search: an index scan never yields more candidates than this.
MAX_EF_SEARCH = 1000

_TABLE = Video._meta.db_table
_TAGGED = Video.hashtags.through._meta.db_table
#: The catalog's size, for tag rarity, as a scalar subquery: the planner's row estimate, which
#: costs nothing, or a count where the table was never analysed (the count runs only then).
_CATALOG_SIZE = f"""SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples::bigint ELSE (SELECT count(*) FROM {_TABLE}) END
                      FROM pg_class c WHERE c.oid = '{_TABLE}'::regclass"""


def tags_of(video: str) -> str:
    """SQL: the hashtags of the video whose id is the expression ``video``, each with how many
    videos carry it, as a 2-D array ``{{tag id, video count}, ...}`` (``{}`` for none): what tag
    rarity needs of a video, read with the statement that finds it (``VideoCatalog``)."""
    return f"""ARRAY(SELECT ARRAY[vh.hashtag_id::bigint, h.video_count]
                      FROM {_TAGGED} vh JOIN {Hashtag._meta.db_table} h ON h.id = vh.hashtag_id
                     WHERE vh.video_id = {video})"""


def catalog_size() -> str:
    """SQL: the catalog's size as tag rarity takes it (a scalar subquery, read once a statement)."""
    return f"({_CATALOG_SIZE})"


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


#: ``_rows_with_setting``'s setting for an exact search: a sequential scan with a top-N sort.
EXACT_SEARCH = ("enable_indexscan", "off", "on")


def _rows_with_setting(statement: str, params: list, setting: tuple[str, str, str] | None) -> list[tuple]:
    """The rows of ``statement``, run with ``setting`` (``(name, value, value to put back)``, or
    None for the connection's own settings) for this statement alone.

    The rest of the caller's transaction (the rest of a batch) must not inherit another breadth,
    or an exact scan: the setting, the statement and the reset go in one message (client-side
    binding sends it as a simple query), one round trip, in a transaction (savepoint=False:
    set_config(..., true) only needs *a* transaction). Without a setting, no transaction is
    opened for it: outside one (an API read) that is two round trips fewer.
    """
    if setting is None:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()
    name, value, reset = setting
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        cursor.execute(f"SELECT set_config(%s, %s, true); {statement}; SELECT set_config(%s, %s, true)",
                       [name, value, *params, name, reset])
        cursor.nextset()
        return cursor.fetchall()


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
    rows = prepared_rows(
        f"""SELECT {select_list("v", _DISPLAY_VIDEO)}, {select_list("c", _DISPLAY_CREATOR)},
                   {select_list("m", _DISPLAY_MUSIC)},
                   (SELECT json_agg(json_build_array({select_list("h", _DISPLAY_HASHTAG)}) ORDER BY h.name, h.id)
                      FROM {Video.hashtags.through._meta.db_table} vh
                      JOIN {Hashtag._meta.db_table} h ON h.id = vh.hashtag_id
                     WHERE vh.video_id = v.id)
              FROM {_TABLE} v
              JOIN {Creator._meta.db_table} c ON c.id = v.creator_id
              LEFT JOIN {Music._meta.db_table} m ON m.id = v.music_id
             WHERE v.id = ANY(%s::bigint[])""",
        [array_literal(ids)],
    )
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
    ``vectors_with_draws`` does the same for the random draws (evidence ranking and region
    exploration score a random sample by its vectors), and ``shared_tags`` follows
    ``vectors_with_search``. With ``tags_with_reads`` every statement that finds videos also
    reads their hashtags and the catalog's size (``tags_of``), and ``keep_tags`` takes those of
    other videos (the signals' videos, read with the session's history), so that
    ``tag_vectors`` of them costs no statement, and ``shared_tags`` of videos without a hashtag
    none either.
    """

    def __init__(self, ef_search: int | None = None, *, vectors_with_search: bool = False,
                 vectors_with_draws: bool = False, tags_with_reads: bool = False):
        self.ef_search = ef_search
        self.vectors_with_search = vectors_with_search
        self.vectors_with_draws = vectors_with_draws
        self.tags_with_reads = tags_with_reads
        self._found_vectors: dict[int, bytes] = {}
        self._creators: dict[int, int | None] = {}
        self._tags: dict[int, list] = {}  # video -> [[tag id, videos with the tag]]
        self._size: int | None = None  # the catalog's size for tag rarity, as last read

    def keep_tags(self, tags: Iterable[tuple[int, list]], size: int) -> None:
        """Keep ``[(video id, [[tag id, video count], ...])]`` and the catalog's ``size`` (what a
        statement read with ``tags_of`` and ``catalog_size``), for ``tag_vectors``."""
        self._tags.update((pk, list(video_tags or ())) for pk, video_tags in tags)
        self._size = size

    def _tag_columns(self, video: str) -> str:
        return f"{tags_of(video)}, {catalog_size()}" if self.tags_with_reads else "NULL, NULL"

    def _keep_row_tags(self, pk: int, video_tags, size) -> None:
        if video_tags is not None:
            self._tags[pk] = list(video_tags)
            self._size = size

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
        excluded = array_literal(exclude)  # once for every pass
        for depth in sorted({min(MAX_EF_SEARCH, max(breadth, 2 * k)), min(MAX_EF_SEARCH, k + len(exclude))}):
            if not pending:
                break
            found = self._nearest(list(pending.values()), k, depth, excluded, ef_search=max(breadth, depth),
                                  usual=usual.single)
            for i, rows in zip(list(pending), found):
                results[i] = rows
                if len(rows) == k:
                    del pending[i]
        if pending:
            # Exact: sequential scan with a top-N sort.
            found = self._nearest(list(pending.values()), k, k + len(exclude), excluded, ef_search=None,
                                  usual=usual.single)
            for i, rows in zip(list(pending), found):
                results[i] = rows
        return [[(pk, sim) for pk, sim in rows if sim >= min_similarity] for rows in results]

    def _nearest(self, literals: list[str], k: int, depth: int, excluded: str, *,
                 ef_search: int | None, usual: int) -> list[list[tuple[int, float]]]:
        """For each query vector, the first ``k`` of its ``depth`` nearest rows that are not in
        ``excluded`` (an ``array_literal`` of ids); through HNSW, or exactly if ``ef_search`` is None. ``usual`` is the
        connection's own breadth. One statement: a LATERAL join runs the index scan once per
        query."""
        if ef_search is None:
            setting = EXACT_SEARCH
        else:
            setting = None if ef_search == usual else ("hnsw.ef_search", str(ef_search), str(usual))
        vector = "vector_send(embedding), creator_id" if self.vectors_with_search else "NULL, NULL"
        # The seen ids are dropped after the index scan (a WHERE inside it would make pgvector
        # 0.6 return fewer rows); PostgreSQL checks them against a hash of the array.
        search = f"""SELECT n, id, distance, {vector}, {self._tag_columns("ranked.id")}
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
        rows = _rows_with_setting(search, [literals, depth, excluded, k], setting)
        found: list[list[tuple[int, float]]] = [[] for _ in literals]
        for n, pk, distance, vector, creator, video_tags, size in rows:
            found[n - 1].append((pk, 1.0 - distance))
            if vector is not None:
                self._found_vectors[pk] = vector
                self._creators[pk] = creator
            self._keep_row_tags(pk, video_tags, size)
        return found

    def random_unseen(self, k: int, exclude: frozenset[int], rng: np.random.Generator, popularity_weighted: bool = False):
        """``k`` unseen embedded videos drawn at random (by plays + 1 when ``popularity_weighted``).

        Draws candidate ids from the id range instead of ``ORDER BY random()``, which would read
        the whole table on every batch. Popularity weighting picks among a uniform sample of
        10×k candidates, an approximation that keeps the cost independent of catalog size.
        With ``vectors_with_draws``, the vectors and creators of the videos it can return are
        read by the same statements and kept.
        """
        if k <= 0:
            return []
        pool_size = k * (10 if popularity_weighted else 1)
        pool: dict[int, int] = {}
        # The first draw assumes little of the catalog is excluded; the id range it learns
        # sizes the next draws, so a few rounds are enough even near the end of the catalog.
        draw = 4 * pool_size + 8
        for _ in range(4):
            kept = None
            if self.vectors_with_draws:
                # Uniform draws return the first ``pool_size`` new ids in draw order: only those
                # need vectors. A popularity-weighted pick may take any of the pool.
                kept = (list(exclude | pool.keys()), None if popularity_weighted else pool_size - len(pool))
            bounds, candidates, found = self._draw_ids(rng.random(draw), kept)
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

    def _draw_ids(self, fractions: np.ndarray, kept: tuple[list[int], int | None] | None = None):
        """``((min id, max id) or None for an empty catalog, [candidate ids], {id: plays} of the
        candidates that are embedded videos)``: each fraction in [0, 1) picks the id at that
        point of the id range. One statement; both ends of the range come from the primary key
        index (a count(*) would read the whole table).

        ``kept`` is ``(ids excluded or drawn already, how many new ids to keep or None for
        all)``: the vectors and creators of the first that many new candidates (embedded videos
        not among those ids, each counted at its first draw) come with the draw and are kept."""
        drawn = f"""WITH bounds AS (SELECT min(id) AS low, max(id) AS high FROM {_TABLE}),
                         drawn AS (SELECT b.low + floor(d.fraction * (b.high - b.low + 1))::bigint AS id, d.n
                                     FROM bounds b, unnest(%s::float8[]) WITH ORDINALITY AS d(fraction, n))"""
        if kept is None:
            statement = f"""{drawn}
                    SELECT b.low, b.high, d.id, v.play_count, NULL::bytea, NULL::bigint, NULL, NULL
                      FROM bounds b
                      LEFT JOIN drawn d ON true
                      LEFT JOIN {_TABLE} v ON v.id = d.id AND v.embedding IS NOT NULL
                     ORDER BY d.n"""
            params = [array_literal(fractions.tolist())]
        else:
            excluded, keep = kept
            statement = f"""{drawn},
                         found AS (SELECT d.n, d.id, v.play_count, v.embedding, v.creator_id,
                                          v.id IS NOT NULL AND NOT (d.id = ANY(%s::bigint[]))
                                          AND row_number() OVER (PARTITION BY d.id ORDER BY d.n) = 1 AS new
                                     FROM drawn d LEFT JOIN {_TABLE} v ON v.id = d.id AND v.embedding IS NOT NULL),
                         placed AS (SELECT f.*, count(*) FILTER (WHERE f.new) OVER (ORDER BY f.n) AS place FROM found f)
                    SELECT b.low, b.high, p.id, p.play_count, k.vector, p.creator_id, {self._tag_columns("k.id")}
                      FROM bounds b
                      LEFT JOIN placed p ON true
                      LEFT JOIN LATERAL (SELECT p.id, vector_send(p.embedding) AS vector
                                          WHERE p.new AND p.place <= %s) k ON true
                     ORDER BY p.n"""
            params = [array_literal(fractions.tolist()), array_literal(excluded), len(fractions) if keep is None else keep]
        rows = prepared_rows(statement, params, binary=True)
        if not rows or rows[0][0] is None:
            return None, [], {}
        bounds = rows[0][:2]
        candidates = [row[2] for row in rows]
        found = {}
        for _, _, pk, plays, vector, creator, video_tags, size in rows:
            if plays is not None:
                found[pk] = plays
            if vector is not None:
                self._found_vectors[pk] = vector
                self._creators[pk] = creator
                self._keep_row_tags(pk, video_tags, size)
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

    # Hashtags as evidence (``tag_weight``): written out for the reason the searches are (every
    # batch of a state that weighs tags runs them). A tag's rarity is its ``Hashtag.video_count``
    # (kept by the database) against the catalog's size (``catalog_size``, in the statement).

    def tag_vectors(self, ids: Sequence[int]) -> list[dict[int, float]]:
        """Each video's hashtags, weighted by rarity (see ``algorithms.ranking.Catalog``)."""
        if not len(ids):
            return []
        missing = [pk for pk in set(ids) if pk not in self._tags]
        if missing or self._size is None:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT v.id, {tags_of('v.id')}, {catalog_size()} FROM unnest(%s::bigint[]) AS v(id)",
                               [missing or list(set(ids))])
                for pk, video_tags, size in cursor.fetchall():
                    self._keep_row_tags(pk, video_tags, size)
        vectors = {pk: unit_tag_vector({tag: tag_idf(n, self._size) for tag, n in self._tags[pk]}) for pk in set(ids)}
        return [vectors[pk] for pk in ids]

    def shared_tags(self, weights: dict[int, float], k: int, exclude: frozenset[int]) -> list[tuple[int, float]]:
        """Unseen embedded videos tagged like ``weights``' videos (see ``algorithms.ranking.Catalog``).
        With ``vectors_with_search``, their vectors and creators are kept, as a search's are."""
        if k <= 0 or not weights:
            return []
        if all(pk in self._tags for pk in weights) and not any(self._tags[pk] for pk in weights):
            return []  # none of them has a hashtag
        kept = "vector_send(v.embedding), v.creator_id" if self.vectors_with_search else "NULL, NULL"
        with connection.cursor() as cursor:
            cursor.execute(
                f"""WITH mine AS (SELECT t.hashtag_id, sum(w.weight) AS weight
                                    FROM {_TAGGED} t
                                    JOIN unnest(%s::bigint[], %s::float8[]) AS w(video_id, weight)
                                      ON w.video_id = t.video_id
                                   GROUP BY t.hashtag_id),
                         rarity AS (SELECT m.hashtag_id, m.weight, ln(greatest(s.n, 1) / h.video_count) AS idf
                                      FROM mine m JOIN {Hashtag._meta.db_table} h ON h.id = m.hashtag_id,
                                           (SELECT {catalog_size()}::float8 AS n) s
                                     WHERE h.video_count BETWEEN 2 AND greatest(2, floor(%s::float8 * s.n))),
                         scored AS (SELECT t.video_id, sum(r.weight * r.idf) AS score
                                      FROM {_TAGGED} t JOIN rarity r ON r.hashtag_id = t.hashtag_id
                                     WHERE NOT (t.video_id = ANY(%s)) AND r.idf > 0
                                     GROUP BY t.video_id),
                         best AS (SELECT s.video_id, s.score
                                    FROM scored s JOIN {_TABLE} v ON v.id = s.video_id AND v.embedding IS NOT NULL
                                   ORDER BY s.score DESC, s.video_id
                                   LIMIT %s)
                    -- The vectors and tags of the best alone (read before the LIMIT, they were
                    -- read for every video scored).
                    SELECT s.video_id, s.score, {kept}, {self._tag_columns("s.video_id")}
                      FROM best s JOIN {_TABLE} v ON v.id = s.video_id
                     ORDER BY s.score DESC, s.video_id""",
                [list(weights), list(weights.values()), MAX_TAG_SHARE, list(set(exclude) | set(weights)), k],
            )
            rows = cursor.fetchall()
        for pk, _, vector, creator, video_tags, size in rows:
            if vector is not None:
                self._found_vectors[pk] = vector
                self._creators[pk] = creator
            self._keep_row_tags(pk, video_tags, size)
        return [(pk, float(score)) for pk, score, *_ in rows]

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
from datetime import datetime  # noqa: E402
from typing import NamedTuple  # noqa: E402

from tokfeed.errors import NotFound, ServiceError  # noqa: E402


class NotEmbedded(ServiceError):
    """The video or creator exists but has no vector yet (its embedding job has not run)."""

    status = 409
    code = "not_embedded"


class ShownVideo(NamedTuple):
    """What the partner API shows of a video (``CatalogVideoSerializer``'s fields), as plain values:
    the catalog's pages, details and similar lists are read-only and on every partner's hot path,
    so they are read without model instances (``catalog.serializers.catalog_video_data`` gives
    their JSON)."""

    id: int
    external_id: str
    caption: str
    creator_id: int
    creator_handle: str
    music_id: int | None
    music_name: str | None
    music_author: str | None
    music_original: bool | None
    hashtag_names: list[str]  # in name order
    duration_s: int
    play_count: int
    like_count: int
    share_count: int
    comment_count: int
    created_at: datetime | None
    language: str
    web_url: str
    cover_url: str


class ShownCreator(NamedTuple):
    """What the partner API shows of a creator (``CatalogCreatorSerializer``'s fields, in its
    order), as plain values, for the reason ``ShownVideo`` is."""

    id: int
    external_id: str
    handle: str
    display_name: str
    bio: str
    verified: bool
    follower_count: int
    following_count: int
    heart_count: int
    video_count: int
    language: str
    country: str
    catalog_video_count: int


def _shown(named_tuple, expressions: dict[str, str], alias: str) -> str:
    """The select list of ``named_tuple``'s fields, in its order: ``alias.<field>`` unless
    ``expressions`` gives the field's SQL."""
    return ", ".join(f"{expressions.get(field, f'{alias}.{field}')} AS {field}" for field in named_tuple._fields)


_SHOWN_VIDEO = _shown(ShownVideo, {
    "creator_handle": "c.handle", "music_name": "m.name", "music_author": "m.author", "music_original": "m.original",
    # The video's hashtag ids, then those rows by primary key: joined instead, PostgreSQL hashed
    # the video's few links and read the whole hashtag table for each video, ten times slower.
    "hashtag_names": f"""ARRAY(SELECT h.name FROM {Hashtag._meta.db_table} h
                                WHERE h.id = ANY(ARRAY(SELECT vh.hashtag_id FROM {Video.hashtags.through._meta.db_table} vh
                                                        WHERE vh.video_id = v.id))
                                ORDER BY h.name, h.id)""",
}, "v")
_SHOWN_CREATOR = _shown(ShownCreator, {
    "catalog_video_count": f"(SELECT count(*) FROM {_TABLE} cv WHERE cv.creator_id = c.id)",
}, "c")
_CREATOR_TABLE = Creator._meta.db_table


def _similar_statement(model, shown: str, joins: str) -> str:
    """The statement of ``_similar`` for ``model``: ``shown`` (a select list) of the tables
    ``joins`` adds to the neighbours (``near``).

    One statement: the row's vector, its neighbours through the HNSW index and what is shown of
    them, so a similar list costs one round trip and one plan. Written out because the ORM has
    no LATERAL join (the index scan needs the row's vector as a value), and because its version
    (the vector, then the search, then the rows to show, as model instances through DRF's
    serializers) cost about 18 ms a request in process against about 1 ms for the search itself
    (2 shared cores).

    The index scan orders by distance alone: a tie-break there (``, id``) made PostgreSQL sort
    the whole table instead, and a condition on the row's vector (``IS NOT NULL``) gated the scan,
    several times slower. A row without a vector still finds rows (their distances are null), but
    is refused before they are read.

    The row's id is the one parameter; the limits are written in (``{search_k}``, ``{limit}``:
    ``str.format``), so that the statement of each limit runs prepared on one generic plan
    (``tokfeed.rows.prepared_rows``). With the limits as parameters PostgreSQL planned it anew
    for every run, its plan for a known limit being cheaper than for any: planning was about
    40% of the statement's CPU in PostgreSQL.
    """
    table = model._meta.db_table
    return f"""WITH target AS (SELECT id, embedding FROM {table} WHERE id = %s)
               SELECT t.embedding IS NOT NULL, n.*
                 FROM target t
                 LEFT JOIN LATERAL (
                       SELECT near.distance, {shown}
                         FROM (SELECT id, embedding <=> t.embedding AS distance FROM {table}
                                WHERE embedding IS NOT NULL
                                ORDER BY embedding <=> t.embedding LIMIT {{search_k:d}}) AS near
                         {joins}
                        WHERE near.id <> t.id
                      ) AS n ON true
                ORDER BY n.distance, n.id
                LIMIT {{limit:d}}"""


_SIMILAR_VIDEOS = _similar_statement(Video, _SHOWN_VIDEO, f"""
    JOIN {_TABLE} v ON v.id = near.id
    JOIN {_CREATOR_TABLE} c ON c.id = v.creator_id
    LEFT JOIN {Music._meta.db_table} m ON m.id = v.music_id""")
_SIMILAR_CREATORS = _similar_statement(Creator, _SHOWN_CREATOR, f"JOIN {_CREATOR_TABLE} c ON c.id = near.id")


def _similar(model, statement: str, pk: int, limit: int) -> list[tuple[float, tuple]]:
    """The ``limit`` rows of ``model`` nearest to row ``pk`` by cosine (itself excluded), most
    similar first, ties by id: ``[(similarity, shown columns)]``, from ``statement``
    (``_similar_statement``). ``NotFound`` if there is no such row, ``NotEmbedded`` if it has no
    vector yet.

    Only the row itself is excluded, so asking the index for ``limit + 1`` rows at a breadth of
    at least that suffices (what ``VideoCatalog.search`` asks first); should it still come back
    short (HNSW can, on a small or skewed graph), the statement is repeated exactly, so a list is
    short only if the catalog is.
    """
    statement, params = statement.format(search_k=limit + 1, limit=limit), [pk]
    usual = _connection_breadth().single
    breadth = min(MAX_EF_SEARCH, max(usual, limit + 1))
    if breadth == usual:
        rows = prepared_rows(statement, params)
    else:
        rows = _rows_with_setting(statement, params, ("hnsw.ef_search", str(breadth), str(usual)))
    name = model._meta.verbose_name
    if not rows:
        raise NotFound(f"there is no {name} with id {pk}")
    if not rows[0][0]:
        raise NotEmbedded(f"{name} {pk} has no embedding yet: try again once its embedding job has run")
    if sum(distance is not None for _, distance, *_ in rows) < limit:
        # Planned for this run: a cached plan would not see the setting.
        rows = _rows_with_setting(statement, params, EXACT_SEARCH)
    return [(1.0 - distance, shown) for _, distance, *shown in rows if distance is not None]


_SHOWN_VIDEOS_BY_ID = f"""SELECT {_SHOWN_VIDEO} FROM {_TABLE} v
                            JOIN {_CREATOR_TABLE} c ON c.id = v.creator_id
                            LEFT JOIN {Music._meta.db_table} m ON m.id = v.music_id
                           WHERE v.id = ANY(%s::bigint[])"""
_SHOWN_CREATORS_BY_ID = f"SELECT {_SHOWN_CREATOR} FROM {_CREATOR_TABLE} c WHERE c.id = ANY(%s::bigint[])"


def _shown_by_id(named_tuple, statement: str, ids: Sequence[int]) -> list:
    """``named_tuple`` rows of ``statement`` (``..._BY_ID``) for ``ids``, in that order (an id
    with no row left out), from one prepared statement."""
    if not ids:
        return []
    by_id = {row[0]: named_tuple._make(row) for row in prepared_rows(statement, [array_literal(ids)])}
    return [by_id[pk] for pk in ids if pk in by_id]


def shown_videos(video_ids: Sequence[int]) -> list[ShownVideo]:
    """What the partner API shows of the videos ``video_ids``, in that order, for the catalog's
    pages and details (the similar list's columns). Through the model serializer, a page of 50
    cost about 13 ms of Python (model instances, their creator, music and hashtags, and DRF's
    fields), a detail 2.9 ms."""
    return _shown_by_id(ShownVideo, _SHOWN_VIDEOS_BY_ID, video_ids)


def shown_creators(creator_ids: Sequence[int]) -> list[ShownCreator]:
    """What the partner API shows of the creators ``creator_ids``, in that order, with their
    counts, for the catalog's pages and details (the similar list's columns)."""
    return _shown_by_id(ShownCreator, _SHOWN_CREATORS_BY_ID, creator_ids)


def similar_videos(video_id: int, limit: int) -> list[tuple[float, ShownVideo]]:
    """The ``limit`` videos nearest to video ``video_id`` by content vector (itself excluded):
    ``[(cosine, video)]``, most similar first. The feed's index and breadth (``VideoCatalog``),
    so the API and the feed agree."""
    return [(similarity, ShownVideo._make(row)) for similarity, row in _similar(Video, _SIMILAR_VIDEOS, video_id, limit)]


def similar_creators(creator_id: int, limit: int) -> list[tuple[float, ShownCreator]]:
    """The ``limit`` creators nearest to creator ``creator_id`` (itself excluded), by the pooled
    creator vectors (``catalog.embedding_jobs``) over the creators' own index: ``[(cosine,
    creator)]``, most similar first."""
    return [(similarity, ShownCreator._make(row))
            for similarity, row in _similar(Creator, _SIMILAR_CREATORS, creator_id, limit)]


# --- Partner ingestion jobs (catalog/ingestion.py writes them) -----------------------------------

def ingest_job(job_id: str, *, partner: str) -> IngestJob:
    """Job ``job_id`` of ``partner``; ``NotFound`` for a malformed id, no such job, or another
    partner's (who cannot tell a job of someone else's from one that does not exist)."""
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        raise NotFound(f"there is no ingestion job {job_id!r}") from None
    job = IngestJob.objects.defer("records").filter(pk=pk, partner=partner).first()
    if job is None:
        raise NotFound(f"there is no ingestion job {pk} of yours")
    return job
