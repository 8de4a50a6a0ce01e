"""Batch assembly: which videos a state serves next.

``build_batch`` turns a state's batch type and params, the viewer's recent
signals and their history into a list of candidates. It talks to the catalog
only through the small ``Catalog`` protocol: the database layer implements it
with pgvector, and ``InMemoryCatalog`` implements it exactly with numpy (the
reference for tests and benchmarks).

Guarantees, whatever the params: a batch holds exactly
``min(batch_size, unseen items)`` candidates, never an item in ``seen`` and
never the same item twice. Given the same ``rng`` state the result is the same.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

import numpy as np

from ..vectors import WeightedSignal, add_noise, interest_vectors, kmeans, mmr, normalize, normalize_rows, user_vector

RANDOM = "random"
SAMPLED = "sampled"
PERSONALIZED = "personalized"
BIASED = "biased"
BATCH_TYPES = (RANDOM, SAMPLED, PERSONALIZED, BIASED)

# Candidate sources: why an item is in the batch.
SOURCE_RANDOM = "random"
SOURCE_TOPIC = "topic"
SOURCE_ANN = "ann"
SOURCE_BIAS = "bias"

# Personalised recall fetches this many times the batch size per query, so
# the threshold, de-duplication across queries and MMR still have enough to
# choose from.
OVERFETCH = 4

# Softmax temperature over (centroid . user vector) when sampling topics:
# at 0.2 a topic 0.8 closer in cosine is e^4 (~55x) as likely to be drawn,
# so sampled batches lean toward the viewer without locking onto one topic.
TOPIC_TEMPERATURE = 0.2


# --- params ---------------------------------------------------------------

_UNIT_INTERVAL = ("r", "mu", "alpha", "apply_threshold", "mmr_lambda")
_POSITIVE_INT = ("last_n", "n_topics")
_BOOLEAN = ("apply_mmr", "popularity_weighted")
_NON_NEGATIVE = ("decay",)
# FirstBatch blueprints may carry this; tokfeed always removes duplicates
# (a session is never served a video twice), so only ``true`` is accepted.
_FIRSTBATCH_ONLY = ("remove_duplicates",)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _threshold_value(value):
    """FirstBatch writes ``apply_threshold`` either as a number or as
    ``[enabled, value]``; tokfeed uses the number, 0 meaning off."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], bool):
        enabled, threshold = value
        return threshold if enabled else 0.0
    return value


def param_errors(params: Mapping) -> list[str]:
    """Every problem with a state's raw params, as sentences naming the param.

    Unknown keys are errors (a typo must not silently do nothing). Empty list
    = valid. ``BatchParams.from_mapping`` accepts exactly the params this
    accepts.
    """
    if not isinstance(params, Mapping):
        return [f"params must be an object, not {type(params).__name__}"]
    known = {f.name for f in fields(BatchParams)} | set(_FIRSTBATCH_ONLY)
    errors = []
    for key, value in params.items():
        if key not in known:
            errors.append(f"unknown param '{key}' (known params: {', '.join(sorted(known))})")
        elif key == "apply_threshold":
            value = _threshold_value(value)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                errors.append(f"param apply_threshold={params[key]!r} must be a number between 0 and 1")
        elif key in _UNIT_INTERVAL:
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                errors.append(f"param {key}={value!r} must be a number between 0 and 1")
        elif key in _POSITIVE_INT:
            if not _is_number(value) or value != int(value) or value < 1:
                errors.append(f"param {key}={value!r} must be a positive whole number")
        elif key in _BOOLEAN:
            if not isinstance(value, bool):
                errors.append(f"param {key}={value!r} must be true or false")
        elif key in _NON_NEGATIVE:
            if not _is_number(value) or value < 0:
                errors.append(f"param {key}={value!r} must be a number >= 0")
        elif key == "remove_duplicates" and value is not True:
            errors.append("param remove_duplicates can only be true: a session is never served a video twice")
    return errors


@dataclass(frozen=True)
class BatchParams:
    """A state's batch params, parsed (FirstBatch names and meanings).

    - ``last_n``: how many recent signals shape the user vector;
    - ``r``: share of the batch that is random unseen items (exploration);
    - ``mu``: noise scale added to query vectors (exploration around an interest);
    - ``alpha``: 0 queries the mean interest, 1 each recent signal separately;
    - ``apply_threshold``: minimum cosine for personalised items (0 = off);
    - ``apply_mmr`` / ``mmr_lambda``: diversify personalised items with MMR;
    - ``n_topics``: topic clusters to sample from (sampled batches);
    - ``decay``: exponential down-weighting of older signals (tokfeed extension);
    - ``popularity_weighted``: random items drawn by popularity, not uniformly
      (tokfeed extension).
    """

    last_n: int = 5
    r: float = 0.0
    mu: float = 0.0
    alpha: float = 0.0
    apply_threshold: float = 0.0
    apply_mmr: bool = False
    mmr_lambda: float = 0.5
    n_topics: int = 5
    decay: float = 0.0
    popularity_weighted: bool = False

    @classmethod
    def from_mapping(cls, params: Mapping) -> "BatchParams":
        """Parse raw params (a state's JSON). Missing keys take the defaults;
        unknown keys and invalid values raise ValueError naming the param."""
        errors = param_errors(params)
        if errors:
            raise ValueError("; ".join(errors))
        values = {}
        for f in fields(cls):
            if f.name not in params:
                continue
            value = params[f.name]
            if f.name == "apply_threshold":
                value = _threshold_value(value)
            if f.name in _POSITIVE_INT:
                value = int(value)
            elif f.name in _UNIT_INTERVAL or f.name in _NON_NEGATIVE:
                value = float(value)
            values[f.name] = value
        return cls(**values)


# --- catalog ----------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """One item picked for a batch.

    ``similarity`` is the cosine to the query that found the item (the user,
    bias or topic vector), None for random picks. ``source`` is one of
    ``random``, ``topic``, ``ann``, ``bias``.
    """

    id: int
    similarity: float | None
    source: str


@runtime_checkable
class Catalog(Protocol):
    """What batch assembly needs from the catalog. Vectors are normalised."""

    def search_many(
        self, queries: Sequence[np.ndarray], k: int, exclude: frozenset[int], min_similarity: float = -1.0
    ) -> list[list[tuple[int, float]]]:
        """For each query, up to ``k`` ``(id, cosine)`` pairs nearest to it,
        nearest first, with cosine >= ``min_similarity`` and no id in
        ``exclude``. Fewer than ``k`` only when fewer items qualify. (One call
        for all of a batch's queries, so a database can answer them at once.)"""

    def random_unseen(
        self, k: int, exclude: frozenset[int], rng: np.random.Generator, popularity_weighted: bool = False
    ) -> list[int]:
        """``min(k, eligible)`` distinct ids not in ``exclude``, drawn
        uniformly or, if asked, in proportion to popularity."""

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        """The vectors of ``ids``, one row per id, in the order given."""

    def topic_members(
        self, topic: int, k: int, exclude: frozenset[int], rng: np.random.Generator
    ) -> list[int]:
        """Up to ``k`` distinct ids of topic ``topic``, none in ``exclude``."""

    def topic_count(self) -> int:
        """How many topic clusters there are (0 when not clustered)."""

    def topic_centroids(self) -> np.ndarray:
        """The normalised topic centroids, one row per topic."""


class InMemoryCatalog:
    """An exact, numpy-backed ``Catalog``.

    ``ids`` are unique ints, ``vectors`` one row per id (normalised here).
    ``popularity`` (e.g. plays) drives popularity-weighted random picks.
    ``topic_labels`` give each item's topic; centroids are the normalised
    member means unless given. Search is brute force, so results are the
    ground truth approximate indexes are measured against.
    """

    def __init__(self, ids, vectors, popularity=None, topic_labels=None, topic_centroids=None):
        self._ids = np.asarray(ids, dtype=np.int64)
        self._vectors = normalize_rows(vectors)
        if self._ids.ndim != 1 or len(self._ids) != len(self._vectors):
            raise ValueError("ids and vectors must have the same length")
        if len(np.unique(self._ids)) != len(self._ids):
            raise ValueError("ids must be unique")
        self._row = {int(item): row for row, item in enumerate(self._ids)}

        self._popularity = None
        if popularity is not None:
            self._popularity = np.asarray(popularity, dtype=np.float64)
            if self._popularity.shape != self._ids.shape or (self._popularity < 0).any():
                raise ValueError("popularity must be one non-negative number per item")

        self._labels = None
        self._centroids = None
        if topic_labels is not None:
            self._labels = np.asarray(topic_labels, dtype=np.int64)
            if self._labels.shape != self._ids.shape:
                raise ValueError("topic_labels must have one label per item")
            if topic_centroids is None:
                count = int(self._labels.max()) + 1 if len(self._labels) else 0
                sums = np.zeros((count, self._vectors.shape[1]), dtype=np.float32)
                np.add.at(sums, self._labels, self._vectors)
                topic_centroids = sums
        if topic_centroids is not None:
            self._centroids = normalize_rows(topic_centroids)

    @classmethod
    def with_topics(cls, ids, vectors, n_topics: int, seed: int = 0, popularity=None) -> "InMemoryCatalog":
        """A catalog clustered into ``n_topics`` topics with k-means."""
        centroids, labels = kmeans(normalize_rows(vectors), n_topics, seed)
        return cls(ids, vectors, popularity=popularity, topic_labels=labels, topic_centroids=centroids)

    def __len__(self) -> int:
        return len(self._ids)

    def _eligible(self, exclude: Iterable[int]) -> np.ndarray:
        excluded = np.fromiter(exclude, dtype=np.int64)
        if len(excluded) == 0:
            return np.ones(len(self._ids), dtype=bool)
        return ~np.isin(self._ids, excluded)

    def search(self, query, k, exclude=frozenset(), min_similarity=-1.0):
        if k <= 0:
            return []
        sims = self._vectors @ normalize(query)
        rows = np.flatnonzero(self._eligible(exclude) & (sims >= np.float32(min_similarity)))
        # Nearest first; equal similarities in id order so results are stable.
        order = rows[np.lexsort((self._ids[rows], -sims[rows]))][:k]
        return [(int(self._ids[row]), float(sims[row])) for row in order]

    def search_many(self, queries, k, exclude=frozenset(), min_similarity=-1.0):
        return [self.search(query, k, exclude, min_similarity) for query in queries]

    def random_unseen(self, k, exclude, rng, popularity_weighted=False):
        rows = np.flatnonzero(self._eligible(exclude))
        k = min(k, len(rows))
        if k <= 0:
            return []
        p = None
        if popularity_weighted and self._popularity is not None:
            # +1 so items nobody has played yet can still be discovered.
            weights = self._popularity[rows] + 1.0
            p = weights / weights.sum()
        picked = rng.choice(rows, size=k, replace=False, p=p)
        return [int(self._ids[row]) for row in picked]

    def vectors(self, ids):
        return self._vectors[[self._row[int(item)] for item in ids]]

    def topic_members(self, topic, k, exclude, rng):
        if self._labels is None or k <= 0:
            return []
        rows = np.flatnonzero(self._eligible(exclude) & (self._labels == topic))
        picked = rng.choice(rows, size=min(k, len(rows)), replace=False)
        return [int(self._ids[row]) for row in picked]

    def topic_count(self):
        return 0 if self._centroids is None else len(self._centroids)

    def topic_centroids(self):
        if self._centroids is None:
            return np.zeros((0, self._vectors.shape[1]), dtype=np.float32)
        return self._centroids


# --- assembly ---------------------------------------------------------------

def _round_half_up(x: float) -> int:
    # Python's round() rounds 2.5 to 2; a share of 0.5 of 5 slots should be 3.
    return int(math.floor(x + 0.5))


def _random(catalog: Catalog, k: int, exclude: frozenset[int], rng, params: BatchParams) -> list[Candidate]:
    if k <= 0:
        return []
    ids = catalog.random_unseen(k, exclude, rng, params.popularity_weighted)
    return [Candidate(item, None, SOURCE_RANDOM) for item in ids]


def _recall(
    queries: Sequence[np.ndarray],
    source: str,
    catalog: Catalog,
    params: BatchParams,
    k: int,
    batch_size: int,
    seen: frozenset[int],
    rng: np.random.Generator,
) -> list[Candidate]:
    """Up to ``k`` items near ``queries`` (ANN recall, threshold, then
    round-robin across queries or MMR over the pooled candidates)."""
    if k <= 0 or not queries:
        return []
    # k slots can show at most k interests: query the first k (interests come newest first).
    # Round-robin would take nothing from the others anyway, and each query is an index scan.
    queries = [add_noise(q, params.mu, rng) for q in queries[:k]]
    # A threshold of 0 means "off" (FirstBatch), not "drop negative cosines".
    floor = params.apply_threshold if params.apply_threshold > 0 else -1.0
    results = catalog.search_many(queries, batch_size * OVERFETCH, seen, floor)

    if params.apply_mmr:
        best: dict[int, float] = {}
        for hits in results:
            for item, sim in hits:
                best[item] = max(sim, best.get(item, -np.inf))
        pool = list(best)
        if not pool:
            return []
        relevance = np.array([best[item] for item in pool], dtype=np.float32)
        picks = mmr(relevance, catalog.vectors(pool), k, params.mmr_lambda)
        return [Candidate(pool[i], best[pool[i]], source) for i in picks]

    # Round-robin: each query contributes its next-nearest item in turn, so
    # with several interests (alpha > 0) every one of them is represented.
    chosen: list[Candidate] = []
    taken: set[int] = set()
    cursors = [0] * len(results)
    while len(chosen) < k:
        progressed = False
        for q, hits in enumerate(results):
            while cursors[q] < len(hits) and hits[cursors[q]][0] in taken:
                cursors[q] += 1
            if cursors[q] < len(hits) and len(chosen) < k:
                item, sim = hits[cursors[q]]
                chosen.append(Candidate(item, sim, source))
                taken.add(item)
                progressed = True
        if not progressed:
            break
    return chosen


def _sampled(catalog, params, signals, k, seen, rng) -> list[Candidate]:
    """One item from each of up to ``n_topics`` sampled topic clusters."""
    topics = catalog.topic_count()
    k = min(k, params.n_topics)
    if topics == 0 or k <= 0:
        return []
    centroids = catalog.topic_centroids()
    viewer = user_vector(signals, params.last_n, params.decay)
    if viewer is None:
        p = None
    else:
        logits = (centroids @ viewer).astype(np.float64) / TOPIC_TEMPERATURE
        p = np.exp(logits - logits.max())
        p /= p.sum()
    # A weighted permutation of all topics: walk it until enough topics still
    # have unseen items, so exhausted topics do not leave holes.
    order = rng.choice(topics, size=topics, replace=False, p=p)
    chosen: list[Candidate] = []
    taken = set(seen)
    for topic in order:
        members = catalog.topic_members(int(topic), 1, frozenset(taken), rng)
        if members:
            item = members[0]
            sim = float(catalog.vectors([item])[0] @ centroids[topic])
            chosen.append(Candidate(item, sim, SOURCE_TOPIC))
            taken.add(item)
            if len(chosen) == k:
                break
    return chosen


def _bias_queries(bias_vectors, signals, params) -> list[np.ndarray]:
    """Bias vectors, each pulled toward the viewer when we know them:
    ``normalize((1 - alpha) * bias + alpha * user_vector)``. ``alpha`` keeps
    its FirstBatch meaning of "how far from the shared centre toward the
    individual": 0 serves the bias as is, 1 ignores it."""
    biases = [b for b in (normalize(v) for v in bias_vectors) if b.any()]
    viewer = user_vector(signals, params.last_n, params.decay)
    if viewer is None:
        return biases
    return [q for q in (normalize((1.0 - params.alpha) * b + params.alpha * viewer) for b in biases) if q.any()]


def _interleave(main: list[Candidate], extra: list[Candidate]) -> list[Candidate]:
    """Spread ``extra`` evenly through ``main`` (keeping both orders), so the
    exploration slots are not all at the end of the batch."""
    keyed = [((i + 0.5) / len(main), 0, c) for i, c in enumerate(main)]
    keyed += [((i + 0.5) / len(extra), 1, c) for i, c in enumerate(extra)]
    return [c for _, _, c in sorted(keyed, key=lambda t: (t[0], t[1]))]


def build_batch(
    batch_type: str,
    params: BatchParams,
    catalog: Catalog,
    signals: Sequence[WeightedSignal],
    batch_size: int,
    seen: frozenset[int],
    rng: np.random.Generator,
    bias_vectors: Sequence[np.ndarray] = (),
) -> list[Candidate]:
    """The next batch for a session.

    ``round(r * batch_size)`` slots go to random unseen items, spread through
    the batch; the rest are filled according to ``batch_type``:

    - ``random``: every slot random (uniform, or by popularity);
    - ``sampled``: one item from each of ``n_topics`` topic clusters, drawn
      toward the viewer's interest when there is one (uniformly otherwise);
    - ``personalized``: ANN recall around ``interest_vectors`` (with ``mu``
      noise), keeping cosines >= ``apply_threshold``, round-robin across
      queries or MMR-diversified (with ``k`` targeted slots, only the ``k``
      newest interests are queried); random when the viewer has no positive
      signal;
    - ``biased``: the same around ``bias_vectors`` blended with the viewer's
      interest (see ``_bias_queries``); plain personalised without bias vectors.

    Slots the strategy cannot fill (threshold too strict, too few topics, no
    user vector) are filled with random unseen items and appended, so a batch
    always holds ``min(batch_size, unseen items)`` candidates, none in
    ``seen`` and none twice. ``signals`` are chronological (oldest first).
    """
    if batch_type not in BATCH_TYPES:
        raise ValueError(f"unknown batch type '{batch_type}' (expected one of {', '.join(BATCH_TYPES)})")
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0 (got {batch_size})")
    seen = frozenset(seen)

    n_random = batch_size if batch_type == RANDOM else _round_half_up(params.r * batch_size)
    n_targeted = batch_size - n_random

    if batch_type == SAMPLED:
        targeted = _sampled(catalog, params, signals, n_targeted, seen, rng)
    elif batch_type == BIASED and any(normalize(v).any() for v in bias_vectors):
        queries = _bias_queries(bias_vectors, signals, params)
        targeted = _recall(queries, SOURCE_BIAS, catalog, params, n_targeted, batch_size, seen, rng)
    elif batch_type in (PERSONALIZED, BIASED):
        queries = interest_vectors(signals, params.last_n, params.alpha, params.decay)
        targeted = _recall(queries, SOURCE_ANN, catalog, params, n_targeted, batch_size, seen, rng)
    else:
        targeted = []

    taken = seen | {c.id for c in targeted}
    explore = _random(catalog, n_random, taken, rng, params)
    batch = _interleave(targeted, explore)

    shortfall = batch_size - len(batch)
    if shortfall > 0:
        batch += _random(catalog, shortfall, seen | {c.id for c in batch}, rng, params)
    return batch
