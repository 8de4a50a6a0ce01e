"""The partner funnel: a recommendation page as plain, timed stages over candidate lists.

``run_funnel`` chains the stages of ``FUNNEL_STAGES`` (registered with ``stages.registrar``):

- ``recall``: the ``RECALL_K`` nearest videos to the query vector (approximate), none of the
  excluded ones (the query's own videos, a session's served ones);
- ``filter``: those that pass the partner's ``Filters``;
- ``recall_exact``: only when ``filter`` kept fewer than the page needs (a filter that matches
  little of the catalog): the nearest videos that pass the filters, searched exactly with the
  filters in the search itself, so a page is short only when too few videos match;
- ``rerank``: scores and orders them with the reranker named in the context (``RERANKERS``;
  ``hand_weighted`` by default: the hand-set ``RERANK_WEIGHTS``), each item keeping its score's
  parts; the learned reranker (``learned``, ``algorithms.ranking.learned``) is picked by name;
- ``cross_encode``: only when the context carries a cross-encoder and a query text: the first
  ``CROSS_ENCODER_TOP`` are scored again as (query text, video document) pairs, the score gains
  ``CROSS_ENCODER_WEIGHT`` times that (part ``cross_encoder``, in [0, 1]) and they are ordered
  again; the rest stay below them, as they were;
- ``rules``: at most ``creator_quota`` videos per creator, then sponsored videos at their
  positions;
- ``top``: the first ``limit``.

Each stage reports ``StageCount(name, received, kept, ms)``: what it was given (the previous
stage's ``kept``) and what it passed on, so the counts add up from recall to the page.
Everything reaches the catalog through ``FunnelCatalog``; ``InMemoryFunnelCatalog`` is its
exact numpy implementation (tests), ``algorithms.recommendations`` the database's.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..vectors import normalize, normalize_rows
from .candidates import SOURCE_ANN, Candidate
from .stages import registrar

#: Recall reads this many nearest videos: enough that filters, quotas and blocklists leave a
#: full page of up to 100 in the usual case, few enough that reranking them stays cheap.
RECALL_K = 200
#: The kernel width of the negative examples' penalty (as ``evidence``: at 0.2, a video at cosine
#: 0.86 from a negative gets half the penalty of the negative itself).
NEGATIVE_KERNEL_WIDTH = 0.2
#: Freshness halves every this many days.
FRESH_HALF_LIFE_DAYS = 30.0

#: The hand-set reranker's weights, in one place. Each part lies in [0, 1] (``negative`` too) so
#: a weight reads as "how much this matters": similarity to the query dominates; a creator whose
#: own vector lies near the query, a popular video and a fresh one each lift it a little; a video
#: near a negative example falls below its neighbours.
RERANK_WEIGHTS: Mapping[str, float] = {
    "similarity": 1.0,
    "creator_affinity": 0.2,
    "popularity": 0.1,
    "freshness": 0.05,
    "negative": -0.6,
}

SOURCE_SPONSORED = "sponsored"

#: The cross-encoder reads this many of the reranked candidates: it costs a transformer pass per
#: pair, so only the head of the list, where the page is made, is worth it.
CROSS_ENCODER_TOP = 50
#: What a cross-encoder's part (in [0, 1]) adds to the reranker's score: half the weight of the
#: similarity to the query, so it reorders near-ties without overruling the reranker.
CROSS_ENCODER_WEIGHT = 0.5


@dataclass(frozen=True)
class VideoFacts:
    """What filters and the reranker know of a video. ``created_at`` in epoch seconds (None:
    unknown); ``creator_affinity`` is the cosine of its creator's vector to the query (None
    when the creator has none)."""

    creator: int
    language: str = ""
    followers: int = 0
    created_at: float | None = None
    plays: int = 0
    hashtags: frozenset[str] = frozenset()
    creator_affinity: float | None = None
    likes: int = 0
    duration_s: int = 0


@dataclass(frozen=True)
class Filters:
    """What a partner asks of every video on its page; None / empty: no condition. Hashtags
    compare case-insensitively (stored lowercase here)."""

    language: str | None = None
    min_followers: int | None = None
    fresh_within_days: float | None = None
    blocked_creators: frozenset[int] = frozenset()
    blocked_hashtags: frozenset[str] = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "blocked_creators", frozenset(self.blocked_creators))
        object.__setattr__(self, "blocked_hashtags", frozenset(t.lower().lstrip("#") for t in self.blocked_hashtags))

    def any(self) -> bool:
        return bool(self.language or self.min_followers or self.fresh_within_days is not None
                    or self.blocked_creators or self.blocked_hashtags)

    def passes(self, facts: VideoFacts, now: float) -> bool:
        if self.language and facts.language.lower() != self.language.lower():
            return False
        if self.min_followers and facts.followers < self.min_followers:
            return False
        if self.fresh_within_days is not None and (
                facts.created_at is None or facts.created_at < now - self.fresh_within_days * 86400):
            return False
        if facts.creator in self.blocked_creators:
            return False
        return not (self.blocked_hashtags & {t.lower() for t in facts.hashtags})


@dataclass(frozen=True)
class Sponsored:
    video: int
    position: int  # 1-based place on the page


@dataclass(frozen=True)
class Rules:
    creator_quota: int | None = None
    sponsored: tuple[Sponsored, ...] = ()


class FunnelCatalog(Protocol):
    """What the funnel needs from the catalog. Vectors are normalised."""

    def nearest(self, query: np.ndarray, k: int, exclude: frozenset[int], filters: Filters | None = None,
                now: float = 0.0) -> list[tuple[int, float]]:
        """Up to ``k`` ``(id, cosine)`` nearest to ``query``, nearest first, none in ``exclude``.
        Without ``filters`` it may be approximate (an index); with them it is exact over the
        videos that pass them."""

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The vectors of ``ids``, one row per id, in the order given."""

    def facts(self, ids: Sequence[int], query: np.ndarray) -> dict[int, VideoFacts]:
        """``VideoFacts`` of ``ids`` (``creator_affinity`` against ``query``)."""

    def co_occurrence(self, positives: Sequence[int], ids: Sequence[int], session: str | None) -> np.ndarray:
        """For each of ``ids``, its co-occurrence with ``positives`` in other viewers' histories
        (``learned.co_occurrence``), the histories of ``session`` left out."""

    def documents(self, ids: Sequence[int]) -> dict[int, str]:
        """The embedded documents of ``ids`` (what a cross-encoder reads)."""


@dataclass(frozen=True)
class StageCount:
    name: str
    received: int
    kept: int
    ms: float


@dataclass
class FunnelContext:
    """One recommendation request. ``query`` is the unit query vector; ``negatives`` the vectors
    of the videos the partner said no to; ``exclude`` ids never recommended; ``now`` in epoch
    seconds (freshness and ``fresh_within_days`` count from it).

    What the learned reranker reads besides: ``positives`` (the vectors of the viewer's liked or
    long-watched videos, newest first) and their ``positive_ids``, the ``session`` they come from
    (left out of co-occurrence), the viewer's ``language`` and ``learned_model`` (anything with
    ``score(features) -> probabilities``). ``cross_encoder(query_text, documents) -> scores in
    [0, 1]`` and ``query_text`` switch the ``cross_encode`` stage on.
    """

    catalog: FunnelCatalog
    query: np.ndarray
    limit: int
    now: float
    negatives: np.ndarray | None = None
    exclude: frozenset[int] = frozenset()
    filters: Filters = field(default_factory=Filters)
    rules: Rules = field(default_factory=Rules)
    reranker: str = "hand_weighted"
    positives: np.ndarray | None = None
    positive_ids: tuple[int, ...] = ()
    session: str | None = None
    language: str | None = None
    learned_model: object | None = None
    cross_encoder: Callable[[str, list[str]], np.ndarray] | None = None
    query_text: str | None = None
    facts: dict[int, VideoFacts] = field(default_factory=dict)
    stages: list[StageCount] = field(default_factory=list)

    def facts_of(self, ids: Sequence[int]) -> dict[int, VideoFacts]:
        """The facts of ``ids``, read once per request."""
        missing = [i for i in ids if i not in self.facts]
        if missing:
            self.facts.update(self.catalog.facts(missing, self.query))
        return {i: self.facts[i] for i in ids if i in self.facts}

    def needed(self) -> int:
        """How many filtered candidates the page needs: the limit plus what a quota may drop
        is unknowable, so at least the limit and, with a quota, recall's full breadth."""
        return RECALL_K if self.rules.creator_quota else self.limit


FunnelStage = Callable[..., list[Candidate]]
FUNNEL_STAGES: dict[str, FunnelStage] = {}
funnel_stage = registrar(FUNNEL_STAGES, "funnel stage")

#: Rerankers by name: ``(context, candidates) -> candidates`` with ``score`` and ``parts`` set,
#: best first. Issue 13's learned reranker registers here.
Reranker = Callable[["FunnelContext", Sequence[Candidate]], list[Candidate]]
RERANKERS: dict[str, Reranker] = {}
reranker = registrar(RERANKERS, "reranker")


def run_stage(name: str, context: FunnelContext, candidates: Sequence[Candidate], *args) -> list[Candidate]:
    """Run the funnel stage ``name`` on ``candidates``, recording its counts and wall time."""
    started = time.perf_counter()
    kept = FUNNEL_STAGES[name](context, candidates, *args)
    context.stages.append(StageCount(name, len(candidates), len(kept), (time.perf_counter() - started) * 1000))
    return kept


def run_funnel(context: FunnelContext) -> list[Candidate]:
    """The page for ``context``: recall, filter (exact recall when short), rerank, rules, top."""
    candidates = run_stage("recall", context, [])
    if context.filters.any():
        candidates = run_stage("filter", context, candidates)
        if len(candidates) < context.needed():
            candidates = run_stage("recall_exact", context, candidates)
    candidates = run_stage("rerank", context, candidates)
    if context.cross_encoder is not None and context.query_text:
        candidates = run_stage("cross_encode", context, candidates)
    candidates = run_stage("rules", context, candidates)
    return run_stage("top", context, candidates)


@funnel_stage("recall")
def recall(context: FunnelContext, _: Sequence[Candidate]) -> list[Candidate]:
    """The ``RECALL_K`` nearest videos to the query, none excluded (approximate)."""
    hits = context.catalog.nearest(context.query, RECALL_K, context.exclude)
    return [Candidate(item, sim, SOURCE_ANN) for item, sim in hits]


@funnel_stage("filter")
def filter_candidates(context: FunnelContext, candidates: Sequence[Candidate]) -> list[Candidate]:
    facts = context.facts_of([c.id for c in candidates])
    return [c for c in candidates if c.id in facts and context.filters.passes(facts[c.id], context.now)]


@funnel_stage("recall_exact")
def recall_exact(context: FunnelContext, candidates: Sequence[Candidate]) -> list[Candidate]:
    """``candidates`` topped up to ``RECALL_K`` with the nearest videos that pass the filters,
    searched exactly (what the filtered approximate recall missed)."""
    kept = {c.id: c for c in candidates}
    hits = context.catalog.nearest(context.query, RECALL_K, context.exclude | frozenset(kept),
                                   context.filters, context.now)
    for item, sim in hits[:RECALL_K - len(kept)]:
        kept[item] = Candidate(item, sim, SOURCE_ANN)
    return sorted(kept.values(), key=lambda c: (-c.similarity, c.id))


@funnel_stage("rerank")
def rerank(context: FunnelContext, candidates: Sequence[Candidate]) -> list[Candidate]:
    return RERANKERS[context.reranker](context, candidates)


@funnel_stage("cross_encode")
def cross_encode(context: FunnelContext, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The first ``CROSS_ENCODER_TOP`` ordered again with the cross-encoder's part added (see the
    module's docstring); the others follow unchanged."""
    head, tail = list(candidates[:CROSS_ENCODER_TOP]), list(candidates[CROSS_ENCODER_TOP:])
    if not head:
        return []
    documents = context.catalog.documents([c.id for c in head])
    relevance = np.clip(np.asarray(context.cross_encoder(context.query_text, [documents.get(c.id, "") for c in head]),
                                   dtype=np.float64).reshape(-1), 0.0, 1.0)
    rescored = [
        Candidate(c.id, c.similarity, c.source, float((c.score or 0.0) + CROSS_ENCODER_WEIGHT * r),
                  {**c.parts, "cross_encoder": float(r)}, c.creator)
        for c, r in zip(head, relevance)
    ]
    return sorted(rescored, key=lambda c: (-c.score, c.id)) + tail


@funnel_stage("rules")
def apply_rules(context: FunnelContext, candidates: Sequence[Candidate]) -> list[Candidate]:
    """At most ``creator_quota`` per creator (in rank order), then each sponsored video at its
    1-based position (moved there if it was ranked anyway; at the end if the page is shorter)."""
    rules = context.rules
    sponsored_ids = {s.video for s in rules.sponsored}
    organic = [c for c in candidates if c.id not in sponsored_ids]
    if rules.creator_quota:
        facts = context.facts_of([c.id for c in organic])
        counts: Counter = Counter()
        quota_kept = []
        for c in organic:
            creator = facts[c.id].creator if c.id in facts else None
            if creator is not None and counts[creator] >= rules.creator_quota:
                continue
            counts[creator] += 1
            quota_kept.append(c)
        organic = quota_kept
    page = list(organic)
    for s in sorted(rules.sponsored, key=lambda s: s.position):
        page.insert(min(s.position - 1, len(page)), Candidate(s.video, None, SOURCE_SPONSORED, None, {"sponsored": 1.0}))
    return page


@funnel_stage("top")
def top(context: FunnelContext, candidates: Sequence[Candidate]) -> list[Candidate]:
    return list(candidates[:context.limit])


@reranker("hand_weighted")
def hand_weighted(context: FunnelContext, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Orders ``candidates`` by ``RERANK_WEIGHTS`` over their parts (``score_parts``)."""
    if not candidates:
        return []
    parts = score_parts(context, candidates)
    scored = []
    for c, p in zip(candidates, parts):
        score = sum(RERANK_WEIGHTS[name] * value for name, value in p.items())
        scored.append(Candidate(c.id, c.similarity, c.source, float(score), p, context.facts[c.id].creator))
    return sorted(scored, key=lambda c: (-c.score, c.id))


def score_parts(context: FunnelContext, candidates: Sequence[Candidate]) -> list[dict[str, float]]:
    """Each candidate's parts, every one in [0, 1]: ``similarity`` (cosine to the query, clipped
    at 0), ``creator_affinity`` (its creator's cosine to the query, 0 when unknown),
    ``popularity`` (log plays over the most-played candidate's), ``freshness`` (halving every
    ``FRESH_HALF_LIFE_DAYS``; 0 when the date is unknown) and ``negative`` (the strongest
    kernel between it and a negative example; 0 without negatives)."""
    ids = [c.id for c in candidates]
    facts = context.facts_of(ids)
    plays = np.array([math.log1p(max(0, facts[i].plays)) for i in ids])
    top_plays = plays.max() if len(plays) and plays.max() > 0 else 1.0
    negative = np.zeros(len(ids))
    if context.negatives is not None and len(context.negatives):
        sims = context.catalog.vectors(ids) @ normalize_rows(context.negatives).T
        negative = np.exp((sims.max(axis=1) - 1.0) / NEGATIVE_KERNEL_WIDTH)
    parts = []
    for n, c in enumerate(candidates):
        f = facts[c.id]
        age_days = None if f.created_at is None else max(0.0, (context.now - f.created_at) / 86400)
        parts.append({
            "similarity": max(0.0, float(c.similarity or 0.0)),
            "creator_affinity": max(0.0, float(f.creator_affinity or 0.0)),
            "popularity": float(plays[n] / top_plays),
            "freshness": 0.0 if age_days is None else float(0.5 ** (age_days / FRESH_HALF_LIFE_DAYS)),
            "negative": float(negative[n]),
        })
    return parts


def query_vector(vectors: np.ndarray) -> np.ndarray:
    """The normalised mean of ``vectors`` (the positives or the interest texts)."""
    return normalize(np.mean(normalize_rows(np.asarray(vectors, dtype=np.float32)), axis=0))


class InMemoryFunnelCatalog:
    """An exact, numpy-backed ``FunnelCatalog``: ``facts`` is ``{id: VideoFacts}``,
    ``creator_vectors`` ``{creator: vector}`` (affinity is None for creators without one),
    ``histories`` ``{video: sessions that watched it long or liked it}`` and ``documents``
    ``{video: text}``."""

    def __init__(self, ids, vectors, facts: Mapping[int, VideoFacts], creator_vectors: Mapping[int, np.ndarray] | None = None,
                 histories: Mapping[int, frozenset] | None = None, documents: Mapping[int, str] | None = None):
        self._histories = dict(histories or {})
        self._documents = dict(documents or {})
        self._ids = np.asarray(ids, dtype=np.int64)
        self._vectors = normalize_rows(vectors)
        self._row = {int(item): row for row, item in enumerate(self._ids)}
        self._facts = dict(facts)
        self._creator_vectors = {c: normalize(v) for c, v in (creator_vectors or {}).items()}

    def nearest(self, query, k, exclude, filters=None, now=0.0):
        sims = self._vectors @ normalize(query)
        rows = [r for r in range(len(self._ids)) if int(self._ids[r]) not in exclude
                and (filters is None or filters.passes(self._facts[int(self._ids[r])], now))]
        rows.sort(key=lambda r: (-sims[r], self._ids[r]))
        return [(int(self._ids[r]), float(sims[r])) for r in rows[:k]]

    def vectors(self, ids):
        return self._vectors[[self._row[int(i)] for i in ids]]

    def facts(self, ids, query):
        found = {}
        for i in ids:
            f = self._facts[int(i)]
            creator_vector = self._creator_vectors.get(f.creator)
            affinity = None if creator_vector is None else float(creator_vector @ normalize(query))
            found[int(i)] = dataclasses.replace(f, creator_affinity=affinity)
        return found

    def co_occurrence(self, positives, ids, session):
        from .learned import co_occurrence

        return co_occurrence(self._histories, positives, ids, session)

    def documents(self, ids):
        return {int(i): self._documents.get(int(i), "") for i in ids}
