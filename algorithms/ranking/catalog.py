"""What ranking needs from the catalog (``Catalog``), and an exact in-memory implementation.

The database layer implements ``Catalog`` with pgvector (``catalog.selectors.VideoCatalog``);
``InMemoryCatalog`` implements it exactly with numpy: the reference for tests, benchmarks and
offline experiments.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..vectors import kmeans, normalize, normalize_rows

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

    def creators(self, ids: Sequence[int]) -> list[int | None]:
        """The creator of each of ``ids``, in the order given (None when unknown)."""


class InMemoryCatalog:
    """An exact, numpy-backed ``Catalog``.

    ``ids`` are unique ints, ``vectors`` one row per id (normalised here).
    ``popularity`` (e.g. plays) drives popularity-weighted random picks.
    ``topic_labels`` give each item's topic; centroids are the normalised
    member means unless given. ``creators`` give each item's creator. Search is brute force, so results are the
    ground truth approximate indexes are measured against.
    """

    def __init__(self, ids, vectors, popularity=None, topic_labels=None, topic_centroids=None, creators=None):
        self._ids = np.asarray(ids, dtype=np.int64)
        self._vectors = normalize_rows(vectors)
        if self._ids.ndim != 1 or len(self._ids) != len(self._vectors):
            raise ValueError("ids and vectors must have the same length")
        if len(np.unique(self._ids)) != len(self._ids):
            raise ValueError("ids must be unique")
        self._row = {int(item): row for row, item in enumerate(self._ids)}
        self._creators = None if creators is None else [None if c is None else int(c) for c in creators]
        if self._creators is not None and len(self._creators) != len(self._ids):
            raise ValueError("creators must have one creator per item")

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

    def creators(self, ids):
        if self._creators is None:
            return [None] * len(ids)
        return [self._creators[self._row[int(item)]] for item in ids]
