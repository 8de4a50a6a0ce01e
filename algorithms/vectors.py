"""Vector maths for the feed: user vectors, query vectors, noise, MMR, k-means.

Every vector here is float32 and L2-normalised, so cosine similarity is a dot
product. A zero vector stays zero (it means "no information") and never turns
into NaN.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Two query vectors closer than this are the same query (e.g. a viewer who
# watched a video and liked it gives two signals with the same vector).
_SAME_QUERY = 1.0 - 1e-6


def normalize(v) -> np.ndarray:
    """``v`` scaled to unit length, as float32. A zero vector stays zero."""
    v = np.asarray(v, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    if norm == 0.0 or not math.isfinite(norm):
        return np.zeros_like(v)
    return v / norm


def normalize_rows(m) -> np.ndarray:
    """Each row of ``m`` scaled to unit length, as float32. Zero rows stay zero."""
    m = np.asarray(m, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-d array, got shape {m.shape}")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    safe = np.where(norms > 0, norms, 1.0)
    return np.where(norms > 0, m / safe, 0.0).astype(np.float32)


@dataclass(frozen=True)
class WeightedSignal:
    """One signal as the vector maths sees it.

    ``vector`` is the item's embedding, ``weight`` and ``polarity`` come from
    the signal type. ``age`` is extra staleness on top of the signal's rank
    among the recent ones (e.g. signals carried over from an earlier session);
    it only matters when a decay is applied. ``creator`` is the item's creator
    when known (the per-creator cap yields to a viewer who keeps watching one);
    ``video`` is the item itself when known (evidence by shared hashtags).
    """

    vector: np.ndarray
    weight: float
    polarity: int
    age: int = 0
    creator: int | None = None
    video: int | None = None


def seeded_with_bias(signals: Sequence[WeightedSignal], bias_vectors: Sequence[np.ndarray],
                     weight: float) -> list[WeightedSignal]:
    """``signals`` (oldest first) preceded by one positive signal of ``weight`` per non-zero
    bias vector: what a session was started with (interest texts, a cold-start bucket) counts as
    its oldest evidence, so every batch type starts from it (recall around it, evidence ranking
    near it) and real signals take over as they come (it leaves the ``last_n`` window)."""
    seeds = [WeightedSignal(normalize(v), weight, 1) for v in bias_vectors if normalize(v).any()]
    return [*seeds, *signals]


def _recent(signals: Sequence[WeightedSignal], last_n: int) -> list[WeightedSignal]:
    """The last ``last_n`` signals that carry a vector, newest first.

    Neutral signals (polarity 0, e.g. SKIP by default) move the state machine
    but say nothing about taste, so they do not use up one of the ``last_n``
    slots. A signal type's polarity decides this, never its name: a SKIP an
    operator made negative counts against what was skipped.
    """
    if last_n <= 0:
        return []
    informative = [s for s in signals if s.polarity != 0]
    return informative[::-1][:last_n]


def user_vector(signals: Sequence[WeightedSignal], last_n: int, decay: float = 0.0) -> np.ndarray | None:
    """The viewer's interest: a weighted sum over their recent signals.

    ``signals`` are chronological (oldest first). The last ``last_n`` with a
    non-zero polarity count, each as ``polarity * weight * exp(-decay * r)
    * vector`` where ``r`` is its recency rank (0 = newest) plus its ``age``.
    Negative signals are subtracted, so they push the result away from what
    the viewer rejected. Returns the normalised sum, or None when no positive
    signal is among them or everything cancels out: negatives alone do not
    say what a viewer wants.
    """
    recent = _recent(signals, last_n)
    if not any(s.polarity > 0 for s in recent):
        return None
    terms = [
        signal.polarity * signal.weight * math.exp(-decay * (rank + signal.age)) * normalize(signal.vector)
        for rank, signal in enumerate(recent)
    ]
    result = normalize(np.sum(terms, axis=0))
    return result if result.any() else None


def interest_vectors(
    signals: Sequence[WeightedSignal], last_n: int, alpha: float, decay: float = 0.0
) -> list[np.ndarray]:
    """The query vectors for a personalised batch (FirstBatch's ``alpha``).

    ``alpha`` says how far each query moves from the viewer's mean interest
    toward one individual recent signal:

    - ``alpha = 0``: one query, the user vector (the mean interest);
    - ``alpha = 1``: one query per recent positive signal (multi-interest:
      a viewer into cooking and into football gets both, not their blur);
    - in between: for each recent positive signal ``s``,
      ``normalize((1 - alpha) * mean + alpha * s)``.

    Queries are ordered newest signal first, with duplicates (e.g. a watch
    and a like of the same video) removed. Empty when the viewer has no
    positive signal among the recent ones.
    """
    mean = user_vector(signals, last_n, decay)
    if alpha <= 0.0:
        return [] if mean is None else [mean]
    positives = [normalize(s.vector) for s in _recent(signals, last_n) if s.polarity > 0]
    if not positives:
        return []
    # Positives that negatives cancel out leave no mean; the signals still count.
    base = mean if mean is not None else np.zeros_like(positives[0])
    queries: list[np.ndarray] = []
    for vector in positives:
        query = normalize((1.0 - alpha) * base + alpha * vector)
        if query.any() and all(float(query @ q) < _SAME_QUERY for q in queries):
            queries.append(query)
    return queries


def add_noise(v: np.ndarray, mu: float, rng: np.random.Generator) -> np.ndarray:
    """``v`` nudged in a random direction: exploration around an interest.

    Adds ``mu`` times Gaussian noise scaled by ``1/sqrt(dim)`` (so the noise
    has norm about ``mu`` whatever the dimension) and renormalises. ``mu=0``
    returns ``v`` itself and draws nothing from ``rng``.
    """
    if mu == 0:
        return v
    v = np.asarray(v, dtype=np.float32)
    noise = rng.standard_normal(v.shape[-1]).astype(np.float32) / np.float32(math.sqrt(v.shape[-1]))
    return normalize(v + np.float32(mu) * noise)


def mmr(query_sims: np.ndarray, candidate_vectors: np.ndarray, k: int, lambda_: float) -> list[int]:
    """Greedy maximal marginal relevance: ``k`` indices into the candidates.

    Each pick maximises ``lambda_ * relevance - (1 - lambda_) * (highest
    similarity to an item already picked)``. ``lambda_ = 1`` is plain top-k by
    relevance; lower values trade relevance for diversity. The first pick is
    always the most relevant candidate.
    """
    relevance = np.asarray(query_sims, dtype=np.float32)
    vectors = np.asarray(candidate_vectors, dtype=np.float32)
    n = relevance.shape[0]
    k = max(0, min(k, n))
    picked: list[int] = []
    if k == 0:
        return picked
    redundancy = np.zeros(n, dtype=np.float32)
    available = np.ones(n, dtype=bool)
    for _ in range(k):
        scores = lambda_ * relevance - (1.0 - lambda_) * redundancy if picked else relevance.copy()
        scores[~available] = -np.inf
        best = int(np.argmax(scores))
        picked.append(best)
        available[best] = False
        sims = vectors @ vectors[best]
        redundancy = sims if len(picked) == 1 else np.maximum(redundancy, sims)
    return picked


def kmeans(vectors: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Topic clusters: ``(centroids, labels)`` from scikit-learn's KMeans.

    ``k`` is capped at the number of vectors. Centroids come back normalised
    (float32) so they live in the same space as the items; ``labels[i]`` is
    the cluster of ``vectors[i]``. Deterministic for a given ``seed``.
    """
    # Imported here: scikit-learn takes a moment to import and only the
    # clustering job needs it.
    from sklearn.cluster import KMeans

    data = np.asarray(vectors, dtype=np.float32)
    if data.ndim != 2 or len(data) == 0:
        raise ValueError("kmeans needs a non-empty 2-d array of vectors")
    if k < 1:
        raise ValueError(f"kmeans needs k >= 1 (got {k})")
    model = KMeans(n_clusters=min(k, len(data)), n_init=4, random_state=seed)
    labels = model.fit_predict(data)
    return normalize_rows(model.cluster_centers_), labels.astype(np.int64)


@functools.cache
def _blas_threads():
    from threadpoolctl import ThreadpoolController  # scikit-learn's own dependency

    return ThreadpoolController()  # made once: making one scans the loaded libraries (~0.35 ms)


def one_blas_thread():
    """numpy's BLAS limited to one thread while it is entered: for the small products of one
    batch (tens of candidates by tens of signals), where a busy machine's spinning BLAS threads
    cost more than the product. On the shared 2-core machine a 70x384 by 384x30 product took
    400 us on OpenBLAS's two threads against 90 us on one; entering costs about 10 us."""
    return _blas_threads().limit(limits=1, user_api="blas")
