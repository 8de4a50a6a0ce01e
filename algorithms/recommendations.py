"""Partner recommendations (``POST /api/v1/recommendations/``): the funnel
(``algorithms.ranking.funnel``) over the database. Reads only, like a selector: nothing here
writes, and no service is imported.

A query is exactly one of: interest texts (embedded with the project's model), a commenter (the
interest of their last 100 comments: ``catalog.interests``), liked videos (with optional
disliked ones: negatives), or a partner's session (its recent positive and negative signals; the
videos it was served are never recommended). The answer says how many texts, comments or videos
the query pools (``Interest``: thin under 20).

The reranker is ``learned`` when a trained model is stored (``selectors.current_learned_model``)
and ``hand_weighted`` before; the page says which. With ``CROSS_ENCODER_MODEL`` set, the
cross-encoder (``algorithms.cross_encoder``) reads the query's text (the interest texts, or the
documents of the newest liked videos) against the first candidates' documents.

``DatabaseFunnelCatalog`` is the query module of the funnel: its approximate recall is
``catalog.selectors.VideoCatalog``'s (HNSW with over-fetch past the excluded ids); the exact
filtered search and the facts are written out because the filters must run *inside* the
search (pgvector 0.6 has no iterative index scan, so an index scan filtered afterwards comes
back short when a filter matches little of the catalog) and the facts of a page's 200
candidates are read on every request, in one statement.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection

from catalog.documents import Interest
from catalog.models import Creator, Hashtag, Video
from catalog.selectors import VideoCatalog, vector_from_bytes
from feed.selectors import partner_session_evidence, positive_histories
from tokfeed.errors import NotFound, ServiceError

from .ranking.candidates import Candidate
from .ranking.funnel import Filters, FunnelContext, Rules, StageCount, VideoFacts, query_vector, run_funnel
from .ranking.learned import RerankerLog, co_occurrence, majority_language
from .cross_encoder import cross_encoder_scorer
from .selectors import current_learned_model

_VIDEOS = Video._meta.db_table
_CREATORS = Creator._meta.db_table
_HASHTAGS = Hashtag._meta.db_table
_VIDEO_HASHTAGS = Video.hashtags.through._meta.db_table

MAX_INTEREST_TEXTS = 20
MAX_INTEREST_TEXT_CHARS = 2000
MAX_QUERY_VIDEOS = 100
MAX_LIMIT = 100
#: A session's query is the mean of its last this many positive signals' videos.
SESSION_LAST_N = 100
#: The cross-encoder's query for liked videos: the documents of this many of them.
CROSS_ENCODER_QUERY_VIDEOS = 3

#: A video's language: its own, else its creator's (the trending import leaves videos' empty).
_LANGUAGE = "coalesce(nullif(v.language, ''), c.language)"


class RecommendationError(ServiceError):
    pass


class RecommendationSessionNotFound(NotFound, RecommendationError):
    pass


@dataclass(frozen=True)
class Recommendation:
    items: list[Candidate]
    stages: list[StageCount]
    reranker: str = "hand_weighted"
    reranker_model: int | None = None
    #: What the query pools: how many interest texts, comments or liked videos (thin under 20).
    interest: Interest | None = None


class DatabaseFunnelCatalog:
    """``algorithms.ranking.funnel.FunnelCatalog`` over PostgreSQL (one per request)."""

    def __init__(self):
        # Without the vectors of what recall finds: only negatives' penalties read vectors (of
        # the candidates, once), and 200 vectors per request would cost more than that read.
        self._videos = VideoCatalog()

    def nearest(self, query, k, exclude, filters: Filters | None = None, now: float = 0.0):
        if filters is None:
            return self._videos.search(query, k, exclude)
        conditions, params = _filter_sql(filters, now)
        literal = "[" + ",".join(map(str, np.asarray(query, dtype=np.float32).tolist())) + "]"
        # Exact: the filters narrow a sequential scan, and the top k of what is left is sorted.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""SELECT v.id, 1 - (v.embedding <=> %s::vector) AS similarity
                      FROM {_VIDEOS} v JOIN {_CREATORS} c ON c.id = v.creator_id
                     WHERE v.embedding IS NOT NULL AND NOT (v.id = ANY(%s::bigint[])) {conditions}
                     ORDER BY v.embedding <=> %s::vector, v.id
                     LIMIT %s""",
                [literal, list(exclude), *params, literal, k],
            )
            return [(pk, float(sim)) for pk, sim in cursor.fetchall()]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        return self._videos.vectors(ids)

    def facts(self, ids, query) -> dict[int, VideoFacts]:
        """``VideoFacts`` of ``ids``; ``query`` None leaves ``creator_affinity`` unset."""
        literal = None if query is None else "[" + ",".join(map(str, np.asarray(query, dtype=np.float32).tolist())) + "]"
        with connection.cursor() as cursor:
            cursor.execute(
                # The hashtags in one join for all the ids: a subquery per video was planned as a
                # scan of the hashtags per row (100 ms for 200 videos).
                f"""WITH tags AS (SELECT vh.video_id, array_agg(lower(h.name)) AS names
                                    FROM {_VIDEO_HASHTAGS} vh JOIN {_HASHTAGS} h ON h.id = vh.hashtag_id
                                   WHERE vh.video_id = ANY(%s::bigint[]) GROUP BY vh.video_id)
                    SELECT v.id, v.creator_id, {_LANGUAGE}, c.follower_count, extract(epoch FROM v.created_at),
                           v.play_count, coalesce(t.names, '{{}}'), 1 - (c.embedding <=> %s::vector),
                           v.like_count, v.duration_s
                      FROM {_VIDEOS} v JOIN {_CREATORS} c ON c.id = v.creator_id
                      LEFT JOIN tags t ON t.video_id = v.id
                     WHERE v.id = ANY(%s::bigint[])""",
                [list(ids), literal, list(ids)],
            )
            return {
                pk: VideoFacts(creator, language or "", followers, None if created is None else float(created), plays,
                               frozenset(tags), None if affinity is None else float(affinity), likes, duration)
                for pk, creator, language, followers, created, plays, tags, affinity, likes, duration in cursor.fetchall()
            }

    def co_occurrence(self, positives, ids, session) -> np.ndarray:
        if not positives:
            return np.zeros(len(ids))
        return co_occurrence(positive_histories([*positives, *ids]), positives, ids, session)

    def documents(self, ids) -> dict[int, str]:
        return dict(Video.objects.filter(pk__in=list(ids)).values_list("pk", "document"))

    def creator_vectors(self, creators) -> dict[int, np.ndarray]:
        """``{creator: vector}`` of those of ``creators`` that are embedded (training reads them
        all at once; binary, as the videos' vectors are read, since parsing text is slow)."""
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, vector_send(embedding) FROM {_CREATORS} WHERE id = ANY(%s::bigint[]) "
                           "AND embedding IS NOT NULL", [list(creators)])
            return {pk: vector_from_bytes(data) for pk, data in cursor.fetchall()}


def with_catalog(log: RerankerLog) -> RerankerLog:
    """``log`` with the vectors and facts of its embedded videos and their creators' vectors."""
    catalog = DatabaseFunnelCatalog()
    vectors = _embedded_vectors_of(log.video_ids())
    facts = catalog.facts(list(vectors), None)
    log.vectors, log.facts = vectors, facts
    log.creator_vectors = catalog.creator_vectors({f.creator for f in facts.values()})
    return log


def _filter_sql(filters: Filters, now: float) -> tuple[str, list]:
    """The ``AND ...`` conditions of ``filters`` over ``v`` (videos) and ``c`` (creators)."""
    conditions, params = [], []
    if filters.language:
        conditions.append(f"lower({_LANGUAGE}) = lower(%s)")
        params.append(filters.language)
    if filters.min_followers:
        conditions.append("c.follower_count >= %s")
        params.append(filters.min_followers)
    if filters.fresh_within_days is not None:
        conditions.append("v.created_at >= to_timestamp(%s)")
        params.append(now - filters.fresh_within_days * 86400)
    if filters.blocked_creators:
        conditions.append("NOT (v.creator_id = ANY(%s::bigint[]))")
        params.append(sorted(filters.blocked_creators))
    if filters.blocked_hashtags:
        conditions.append(f"""NOT EXISTS (SELECT 1 FROM {_VIDEO_HASHTAGS} vh JOIN {_HASHTAGS} h ON h.id = vh.hashtag_id
                                           WHERE vh.video_id = v.id AND lower(h.name) = ANY(%s::text[]))""")
        params.append(sorted(filters.blocked_hashtags))
    return "".join(f" AND {c}" for c in conditions), params


def _embedded_vectors_of(ids) -> dict[int, np.ndarray]:
    """``{id: vector}`` of those of ``ids`` that are embedded videos."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, vector_send(embedding) FROM {_VIDEOS} WHERE id = ANY(%s::bigint[]) "
                       "AND embedding IS NOT NULL", [list(ids)])
        return {pk: vector_from_bytes(data) for pk, data in cursor.fetchall()}


def _embedded_vectors(ids: Sequence[int], field: str) -> dict[int, np.ndarray]:
    """``{id: vector}`` of ``ids``; any id that is no embedded video is the caller's error."""
    found = _embedded_vectors_of(ids)
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise RecommendationError(f"no embedded video {missing[0]}", field=field, code="not_found")
    return found


def recommend(*, partner: str | None, interest_texts: Sequence[str] | None = None,
              video_ids: Sequence[int] | None = None, negative_video_ids: Sequence[int] = (),
              session=None, commenter: str | None = None, filters: Filters = Filters(), rules: Rules = Rules(),
              limit: int = 10, reranker: str | None = None) -> Recommendation:
    """The page of ``limit`` videos for exactly one of ``interest_texts``, ``commenter``,
    ``video_ids`` (and ``negative_video_ids``) or ``session`` (one of ``partner``'s), with the
    funnel's stages and what the query pooled. ``reranker`` None: ``learned`` when a model is
    stored, else ``hand_weighted``."""
    given = [name for name, value in (("interest_texts", interest_texts), ("commenter", commenter),
                                      ("video_ids", video_ids), ("session", session)) if value is not None]
    if len(given) != 1:
        raise RecommendationError('give exactly one of "interest_texts", "commenter", "video_ids" or "session"',
                                  field=given[1] if len(given) > 1 else None)
    negatives: list[int] = list(negative_video_ids)
    positives: list[int] = []
    positive_vectors = None
    exclude: set[int] = set()
    query_text = None
    if interest_texts is not None or commenter is not None:
        from catalog.interests import commenter_interest, texts_interest

        interest = texts_interest(interest_texts) if commenter is None else commenter_interest(commenter)
        if interest.vector is None:
            raise (RecommendationError("the interest texts are empty", field="interest_texts") if commenter is None
                   else RecommendationError(f"no comments by {commenter!r}", field="commenter", code="no_signals"))
        query = interest.vector
        if interest_texts is not None:
            query_text = " ; ".join(t.strip() for t in interest_texts if t.strip())
    else:
        if session is not None:
            evidence = partner_session_evidence(session, partner, SESSION_LAST_N)
            if evidence is None:
                raise RecommendationSessionNotFound(f"no session {session}", field="session")
            if not evidence.positives:
                raise RecommendationError("the session has no positive signal yet: send some, or use "
                                          "interest_texts", field="session", code="no_signals")
            positives, negatives = evidence.positives, evidence.negatives
            exclude |= evidence.served
        else:
            positives = list(video_ids)
        vectors = _embedded_vectors(positives, "session" if session is not None else "video_ids")
        positive_vectors = np.stack([vectors[pk] for pk in positives[:SESSION_LAST_N]])
        query = query_vector(np.stack([vectors[pk] for pk in positives]))
        interest = Interest(query, len(positives))
        exclude |= set(positives)
    negative_vectors = None
    if negatives:
        found = _embedded_vectors(negatives, "session" if session is not None else "negative_video_ids")
        negative_vectors = np.stack([found[pk] for pk in negatives])
        exclude |= set(negatives)
    if rules.sponsored:
        _embedded_vectors([s.video for s in rules.sponsored], "rules.sponsored")
    learned_model = current_learned_model() if reranker in (None, "learned") else None
    if reranker in (None, "learned"):
        reranker = "learned" if learned_model is not None else "hand_weighted"
    catalog = DatabaseFunnelCatalog()
    cross_encoder = cross_encoder_scorer()
    language = None
    if positives and reranker == "learned":
        language = majority_language([f.language for f in catalog.facts(positives[:SESSION_LAST_N], None).values()])
    if positives and cross_encoder is not None:
        documents = catalog.documents(positives[:CROSS_ENCODER_QUERY_VIDEOS])
        query_text = " ; ".join(filter(None, (documents.get(pk, "") for pk in positives[:CROSS_ENCODER_QUERY_VIDEOS])))
    context = FunnelContext(catalog=catalog, query=query, limit=limit, now=time.time(),
                            negatives=negative_vectors, exclude=frozenset(exclude), filters=filters, rules=rules,
                            reranker=reranker, positives=positive_vectors, positive_ids=tuple(positives[:SESSION_LAST_N]),
                            session=None if session is None else str(session), language=language,
                            learned_model=learned_model, cross_encoder=cross_encoder, query_text=query_text)
    items = run_funnel(context)
    return Recommendation(items, context.stages, reranker, learned_model.model_id if reranker == "learned" else None,
                          interest)
