"""Ranking stages: plain functions over candidate lists, looked up by name and timed.

Every stage takes the ``BatchContext`` (what it needs to know about the viewer and the catalog)
and returns candidates; builders (``builders``) chain them per batch type (and the partner
funnel is to reuse them). ``STAGES`` maps a stage's name to it; calling a stage through ``run``
adds its wall time to ``context.timings`` under its name.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..vectors import WeightedSignal, add_noise, mmr, normalize, user_vector
from .candidates import SOURCE_ANN, SOURCE_EXPLORE, SOURCE_RANDOM, SOURCE_TAGS, SOURCE_TOPIC, Candidate
from .catalog import Catalog
from .evidence import Evidence, EvidenceScores
from .params import BatchParams

# Personalised recall fetches this many times the batch size per query, so
# the threshold, de-duplication across queries and MMR still have enough to
# choose from.
OVERFETCH = 4

# Softmax temperature over (centroid . user vector) when sampling topics:
# at 0.2 a topic 0.8 closer in cosine is e^4 (~55x) as likely to be drawn,
# so sampled batches lean toward the viewer without locking onto one topic.
TOPIC_TEMPERATURE = 0.2

#: Evidence ranking and region exploration weigh this many unseen videos drawn at random per
#: slot besides the recalled ones: enough that some lie in regions the viewer has not been
#: shown, few enough that reading their vectors stays cheap.
EXPLORE_SAMPLE_PER_SLOT = 8
#: Coverage (kernel mass of shown videos, a skip counting twice) above which an item lies near
#: something the viewer was shown: at the kernel width of 0.2, one shown video at cosine 0.86.
NEAR_COVERED = 0.5


@dataclass
class BatchContext:
    """What the stages of one batch know. ``signals`` are chronological (oldest first);
    ``taken`` grows as stages pick items, so a later stage never repeats one; ``creator_counts``
    starts from ``recent_creators`` (the previous batch's) and grows with every item a capped
    stage picks, so the per-creator cap holds across the stages of one batch; ``trusted_creators``
    are those the cap yields to (``creator_trust``)."""

    params: BatchParams
    catalog: Catalog
    signals: Sequence[WeightedSignal]
    batch_size: int
    seen: frozenset[int]
    rng: np.random.Generator
    bias_vectors: Sequence[np.ndarray] = ()
    recent_creators: Sequence[int | None] = ()
    timings: dict[str, float] = field(default_factory=dict)
    taken: set[int] = field(default_factory=set)
    creator_counts: Counter = field(init=False)
    trusted_creators: frozenset[int] = field(init=False)

    def __post_init__(self):
        self.creator_counts = Counter(c for c in self.recent_creators if c is not None)
        self.trusted_creators = trusted_creators(self.signals, self.params)

    def excluded(self) -> frozenset[int]:
        return self.seen | self.taken

    def at_creator_cap(self, creator: int | None) -> bool:
        """Whether ``creator`` already has ``creator_cap`` videos here (never, with no cap)."""
        cap = self.params.creator_cap
        return (bool(cap) and creator is not None and self.creator_counts[creator] >= cap
                and creator not in self.trusted_creators)


def trusted_creators(signals: Sequence[WeightedSignal], params: BatchParams) -> frozenset[int]:
    """The creators the per-creator cap yields to: at least ``creator_trust`` positive signals
    on their videos among the last ``score_last_n`` (else ``last_n``) signals with a polarity,
    and more positive than negative ones (agreement, so one noisy long watch does not lift it)."""
    if not params.creator_trust or not params.creator_cap:
        return frozenset()
    n = params.score_last_n or params.last_n
    recent = [s for s in signals if s.polarity != 0 and s.creator is not None][-n:]
    positive = Counter(s.creator for s in recent if s.polarity > 0)
    negative = Counter(s.creator for s in recent if s.polarity < 0)
    return frozenset(c for c, count in positive.items()
                     if count >= params.creator_trust and count > negative[c])


def registrar(table: dict, kind: str):
    """A decorator factory that registers functions in ``table`` by name, one function a name
    (``@stage("recall_ann")``, ``@builder("personalized")``)."""
    def named(name: str):
        def register(function):
            if name in table:
                raise ValueError(f"{kind} '{name}' is already registered")
            table[name] = function
            return function
        return register
    return named


Stage = Callable[..., list[Candidate]]
STAGES: dict[str, Stage] = {}
stage = registrar(STAGES, "stage")


def run(name: str, context: BatchContext, *args, **kwargs) -> list[Candidate]:
    """Run the stage called ``name``, adding its wall time (ms) to ``context.timings``."""
    started = time.perf_counter()
    try:
        return STAGES[name](context, *args, **kwargs)
    finally:
        context.timings[name] = context.timings.get(name, 0.0) + (time.perf_counter() - started) * 1000


# --- recall -----------------------------------------------------------------------------------

@stage("recall_random")
def recall_random(context: BatchContext, k: int) -> list[Candidate]:
    """``k`` unseen items at random (uniformly, or by popularity)."""
    if k <= 0:
        return []
    ids = context.catalog.random_unseen(k, context.excluded(), context.rng, context.params.popularity_weighted)
    return [Candidate(item, None, SOURCE_RANDOM) for item in ids]


@stage("recall_ann")
def recall_ann(context: BatchContext, queries: Sequence[np.ndarray], k: int, source: str = SOURCE_ANN) -> list[Candidate]:
    """Items near ``queries`` (with ``mu`` noise and the ``apply_threshold`` floor), each once:
    in round-robin order across queries (each contributes its next-nearest in turn, so with
    several interests every one is represented), or with ``apply_mmr`` in query order with its
    best similarity to any query, for ``diversify_mmr`` to order. Each query finds up to
    ``batch_size * OVERFETCH`` unseen items. At most
    the ``k`` newest queries are searched (k slots can show at most k interests), and at most
    ``max_queries`` when set."""
    params = context.params
    if k <= 0 or not queries:
        return []
    limit = min(k, params.max_queries) if params.max_queries else k
    queries = [add_noise(q, params.mu, context.rng) for q in queries[:limit]]
    # A threshold of 0 means "off" (FirstBatch), not "drop negative cosines".
    floor = params.apply_threshold if params.apply_threshold > 0 else -1.0
    results = context.catalog.search_many(queries, context.batch_size * OVERFETCH, context.excluded(), floor)
    if params.apply_mmr:
        # MMR (``diversify_mmr``) orders them: each with its best similarity to any query.
        best: dict[int, float] = {}
        for hits in results:
            for item, sim in hits:
                best[item] = max(sim, best.get(item, -np.inf))
        return [Candidate(item, sim, source) for item, sim in best.items()]
    # Each query contributes its next-nearest item not yet listed, in turn, until all run out.
    ordered: dict[int, float] = {}
    cursors = [0] * len(results)
    progressed = True
    while progressed:
        progressed = False
        for q, hits in enumerate(results):
            while cursors[q] < len(hits) and hits[cursors[q]][0] in ordered:
                cursors[q] += 1
            if cursors[q] < len(hits):
                item, sim = hits[cursors[q]]
                ordered[item] = sim
                progressed = True
    return [Candidate(item, sim, source) for item, sim in ordered.items()]


@stage("recall_tags")
def recall_tags(context: BatchContext, k: int) -> list[Candidate]:
    """Up to ``k * OVERFETCH`` unseen items that share rare hashtags with the recent positive
    signals (the last ``score_last_n`` with a polarity, each by its weight), best first: what
    the vectors miss of a taste its videos' tags name."""
    evidence = Evidence.from_signals(context.signals, context.params.score_last_n, context.params.decay)
    weights: dict[int, float] = {}
    for video, weight in zip(evidence.videos, evidence.positive):
        if video is not None and weight > 0:
            weights[video] = weights.get(video, 0.0) + float(weight)
    if k <= 0 or not weights:
        return []
    hits = context.catalog.shared_tags(weights, k * OVERFETCH, context.excluded())
    return [Candidate(item, None, SOURCE_TAGS) for item, _ in hits]


@stage("recall_topics")
def recall_topics(context: BatchContext, k: int) -> list[Candidate]:
    """One item from each of up to ``min(k, n_topics)`` topic clusters, drawn toward the
    viewer's interest when there is one (uniformly otherwise); exhausted topics are skipped."""
    catalog, params = context.catalog, context.params
    topics = catalog.topic_count()
    k = min(k, params.n_topics)
    if topics == 0 or k <= 0:
        return []
    centroids = catalog.topic_centroids()
    viewer = user_vector(context.signals, params.last_n, params.decay)
    if viewer is None:
        p = None
    else:
        logits = (centroids @ viewer).astype(np.float64) / TOPIC_TEMPERATURE
        p = np.exp(logits - logits.max())
        p /= p.sum()
    order = context.rng.choice(topics, size=topics, replace=False, p=p)
    chosen: list[Candidate] = []
    taken = set(context.excluded())
    for topic in order:
        members = catalog.topic_members(int(topic), 1, frozenset(taken), context.rng)
        if members:
            item = members[0]
            sim = float(catalog.vectors([item])[0] @ centroids[topic])
            chosen.append(Candidate(item, sim, SOURCE_TOPIC))
            taken.add(item)
            if len(chosen) == k:
                break
    return chosen


# --- score, diversify, cap -------------------------------------------------------------------

def _evidence_scores(context: BatchContext, pool: Sequence[Candidate], explore_bonus: float, *,
                     with_tags: bool = True) -> EvidenceScores:
    """The evidence on ``pool``; this batch's earlier picks (another stage's) count as shown.
    Shared hashtags count (``tag_weight``) unless ``with_tags`` is false."""
    params = context.params
    evidence = Evidence.from_signals(context.signals, params.score_last_n, params.decay)
    ids = [c.id for c in pool]
    tags = None
    if with_tags and params.tag_weight > 0 and len(evidence):
        known = [video for video in evidence.videos if video is not None]
        vectors = context.catalog.tag_vectors(ids + known)
        by_video = dict(zip(known, vectors[len(ids):]))
        tags = (vectors[:len(ids)], [by_video.get(video, {}) for video in evidence.videos])
    scores = EvidenceScores(context.catalog.vectors(ids), evidence, params.kernel_width, explore_bonus,
                            params.tag_weight, tags, params.corroboration)
    if params.relative_coverage:
        # The random draws are a uniform sample of the catalog: how crowded it is around each.
        scores.judge_coverage_relative_to([i for i, c in enumerate(pool) if c.source == SOURCE_RANDOM],
                                          params.min_relative_density)
    earlier = sorted(context.taken - context.seen)
    scores.count_as_shown(context.catalog.vectors(earlier) if earlier else [])
    return scores


@stage("rank_by_evidence")
def rank_by_evidence(context: BatchContext, pool: Sequence[Candidate], k: int, *, source: str | None = None,
                     explore_bonus: float | None = None, min_liked: float = 0.0) -> list[Candidate]:
    """Pick ``k`` of ``pool`` one at a time by evidence score (``evidence``), each pick counted
    as evidence for the next (so a batch does not stack near-duplicates), within the
    per-creator cap; fewer when no candidate left is liked above ``min_liked``. Picks keep their
    score and its parts; ``source`` relabels them; ``explore_bonus`` replaces the state's."""
    unique: dict[int, Candidate] = {}
    for c in pool:
        unique.setdefault(c.id, c)  # the first finder: a recalled item also drawn at random stays recalled
    excluded = context.excluded()  # a union of two sets: once, not once a candidate
    pool = [c for c in unique.values() if c.id not in excluded]
    if k <= 0 or not pool:
        return []
    scores = _evidence_scores(context, pool, context.params.explore_bonus if explore_bonus is None else explore_bonus)
    creators = context.catalog.creators([c.id for c in pool])
    available = np.ones(len(pool), dtype=bool)
    chosen: list[Candidate] = []
    while len(chosen) < k:
        capped = np.array([context.at_creator_cap(creator) for creator in creators])
        values = np.where(available & ~capped & (scores.liked > min_liked), scores.score(), -np.inf)
        best = int(np.argmax(values))
        if not np.isfinite(values[best]):
            break
        c = pool[best]
        chosen.append(Candidate(c.id, c.similarity, source or c.source, float(values[best]), scores.parts(best), creators[best]))
        available[best] = False
        context.creator_counts[creators[best]] += 1
        context.taken.add(c.id)
        scores.pick(best)
    return chosen


@stage("diversify_mmr")
def diversify_mmr(context: BatchContext, pool: Sequence[Candidate], k: int) -> list[Candidate]:
    """``k`` of ``pool`` by maximal marginal relevance (``mmr_lambda``) over their similarity."""
    if k <= 0 or not pool:
        return []
    relevance = np.array([c.similarity for c in pool], dtype=np.float32)
    picks = mmr(relevance, context.catalog.vectors([c.id for c in pool]), k, context.params.mmr_lambda)
    return [pool[i] for i in picks]


@stage("cap_creators")
def cap_creators(context: BatchContext, ordered: Sequence[Candidate], k: int) -> list[Candidate]:
    """The first ``k`` of ``ordered`` keeping at most ``creator_cap`` videos per creator
    (counting the previous batch's); with no cap, simply the first ``k``."""
    if not context.params.creator_cap:
        chosen = list(ordered[:max(0, k)])
    else:
        creators = context.catalog.creators([c.id for c in ordered])
        chosen = []
        for c, creator in zip(ordered, creators):
            if len(chosen) >= k:
                break
            if not context.at_creator_cap(creator):
                chosen.append(Candidate(c.id, c.similarity, c.source, c.score, c.parts, creator))
                context.creator_counts[creator] += 1
    context.taken.update(c.id for c in chosen)
    return chosen


# --- explore, fill ------------------------------------------------------------------------

@stage("explore")
def explore(context: BatchContext, k: int) -> list[Candidate]:
    """``k`` exploration items: with ``explore_regions``, drawn at random from the half of a
    random sample least covered (and never from what lies near a video already shown, when
    anything else is left) by what the viewer has been shown and has rejected (the last
    ``score_last_n`` signals, and this batch's earlier picks), within the per-creator cap; else
    uniformly random (or popularity-weighted) unseen items. With ``relative_coverage`` coverage
    is read against how crowded the catalog is around each item (``EvidenceScores.covered``).

    Drawn, not the most remote: a uniform sample holds the catalog's regions in proportion to
    their size, so a large region the viewer has not tried is found as often as it should be,
    where "farthest from everything shown" would keep picking outliers."""
    if k <= 0:
        return []
    if not context.params.explore_regions:
        chosen = recall_random(context, k)
        context.taken.update(c.id for c in chosen)
        return chosen
    drawn = recall_random(context, k * EXPLORE_SAMPLE_PER_SLOT)
    excluded = context.excluded()
    pool = [c for c in drawn if c.id not in excluded]
    if not pool:
        return []
    # Coverage by vectors alone: a tag spans a whole region, and a taste inside it (one
    # creator's videos among its topic's) must stay findable after the rest was skipped.
    scores = _evidence_scores(context, pool, explore_bonus=0.0, with_tags=False)
    creators = context.catalog.creators([c.id for c in pool])
    available = np.ones(len(pool), dtype=bool)
    chosen: list[Candidate] = []
    while len(chosen) < k:
        allowed = available & ~np.array([context.at_creator_cap(creator) for creator in creators])
        if not allowed.any():
            break
        covered = scores.covered
        limit = max(covered[allowed].min(), min(np.median(covered[allowed]), NEAR_COVERED))
        best = next(i for i in range(len(pool)) if allowed[i] and covered[i] <= limit)  # the sample's order is random
        c = pool[best]
        chosen.append(Candidate(c.id, None, SOURCE_EXPLORE, None, scores.parts(best), creators[best]))
        available[best] = False
        context.creator_counts[creators[best]] += 1
        context.taken.add(c.id)
        scores.count_as_shown(scores.vectors[best:best + 1])
    return chosen


@stage("fill")
def fill(context: BatchContext, batch: list[Candidate]) -> list[Candidate]:
    """``batch`` topped up with random unseen items to ``batch_size`` (slots a strategy could
    not fill: threshold too strict, too few topics, no interest yet), appended."""
    shortfall = context.batch_size - len(batch)
    if shortfall <= 0:
        return batch
    context.taken.update(c.id for c in batch)
    extra = recall_random(context, shortfall)
    context.taken.update(c.id for c in extra)
    return batch + extra


def interleave(main: list[Candidate], extra: list[Candidate]) -> list[Candidate]:
    """Spread ``extra`` evenly through ``main`` (keeping both orders), so the
    exploration slots are not all at the end of the batch."""
    keyed = [((i + 0.5) / len(main), 0, c) for i, c in enumerate(main)]
    keyed += [((i + 0.5) / len(extra), 1, c) for i, c in enumerate(extra)]
    return [c for _, _, c in sorted(keyed, key=lambda t: (t[0], t[1]))]


def bias_queries(bias_vectors, signals, params: BatchParams) -> list[np.ndarray]:
    """Bias vectors, each pulled toward the viewer when we know them:
    ``normalize((1 - alpha) * bias + alpha * user_vector)``. ``alpha`` keeps
    its FirstBatch meaning of "how far from the shared centre toward the
    individual": 0 serves the bias as is, 1 ignores it."""
    biases = [b for b in (normalize(v) for v in bias_vectors) if b.any()]
    viewer = user_vector(signals, params.last_n, params.decay)
    if viewer is None:
        return biases
    return [q for q in (normalize((1.0 - params.alpha) * b + params.alpha * viewer) for b in biases) if q.any()]
