"""What ranking needs from the catalog (``Catalog``), and an exact in-memory implementation.

The database layer implements ``Catalog`` with pgvector (``catalog.selectors.VideoCatalog``);
``InMemoryCatalog`` implements it exactly with numpy: the reference for tests, benchmarks and
offline experiments.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from ..vectors import kmeans, normalize, normalize_rows

#: Hashtags on more than this share of the catalog ("fyp", "viral") say who a video was posted
#: for, not what it is about: tag recall does not follow them (their rarity weight is low too).
MAX_TAG_SHARE = 0.2


def tag_idf(videos_with_tag: int, catalog_size: int) -> float:
    """A hashtag's rarity weight: ``ln(catalog size / videos with the tag)``, 0 for a tag on one
    video only (it makes no two videos alike)."""
    if videos_with_tag <= 1 or catalog_size <= 0:
        return 0.0
    return max(0.0, math.log(catalog_size / videos_with_tag))


def unit_tag_vector(weights: dict[int, float]) -> dict[int, float]:
    """``weights`` without zero entries, scaled to unit length, in tag order (the same floats
    whatever order the hashtags were read in: a plan may return them in any)."""
    kept = {tag: w for tag, w in sorted(weights.items()) if w > 0}
    norm = math.sqrt(sum(w * w for w in kept.values()))
    return {tag: w / norm for tag, w in kept.items()} if norm else {}


def tag_cosine(a: Sequence[dict[int, float]], b: Sequence[dict[int, float]]) -> np.ndarray:
    """The cosine of each tag vector of ``a`` with each of ``b`` (unit-length sparse vectors);
    summed in tag order, so the same whatever order the vectors hold their tags in."""
    columns = {tag: i for i, tag in enumerate(sorted({tag for v in (*a, *b) for tag in v}))}
    if not columns or not len(a) or not len(b):
        return np.zeros((len(a), len(b)))

    def dense(vectors):
        m = np.zeros((len(vectors), len(columns)))
        for row, v in enumerate(vectors):
            for tag, w in v.items():
                m[row, columns[tag]] = w
        return m

    return dense(a) @ dense(b).T

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

    def tag_vectors(self, ids: Sequence[int]) -> list[dict[int, float]]:
        """Each of ``ids``' hashtags as a unit-length sparse vector ``{tag id: weight}``, in the
        order given: a tag weighs its rarity (``tag_idf``), and a tag no other video has is
        left out (it cannot make two videos alike); ``{}`` when none is left."""

    def shared_tags(self, weights: dict[int, float], k: int, exclude: frozenset[int]) -> list[tuple[int, float]]:
        """Up to ``k`` ``(id, score)`` pairs of videos not in ``exclude`` that share a hashtag
        with the videos in ``weights`` (``{video id: weight}``), best first: a video scores the
        sum over shared tags of the sharing video's weight times the tag's rarity (``tag_idf``).
        Tags on more than ``MAX_TAG_SHARE`` of the catalog are not followed."""


class InMemoryCatalog:
    """An exact, numpy-backed ``Catalog``.

    ``ids`` are unique ints, ``vectors`` one row per id (normalised here).
    ``popularity`` (e.g. plays) drives popularity-weighted random picks.
    ``topic_labels`` give each item's topic; centroids are the normalised
    member means unless given. ``creators`` give each item's creator, ``tags`` its hashtags (any hashable names). Search is brute force, so results are the
    ground truth approximate indexes are measured against.
    """

    def __init__(self, ids, vectors, popularity=None, topic_labels=None, topic_centroids=None, creators=None,
                 tags=None):
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

        self._tags: list[frozenset] = [frozenset()] * len(self._ids) if tags is None else [frozenset(t) for t in tags]
        if len(self._tags) != len(self._ids):
            raise ValueError("tags must have one set of tags per item")
        self._tagged: dict[object, list[int]] = defaultdict(list)  # tag -> rows
        for row, item_tags in enumerate(self._tags):
            for tag in item_tags:
                self._tagged[tag].append(row)

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

    def _idf(self, tag) -> float:
        return tag_idf(len(self._tagged.get(tag, ())), len(self._ids))

    def tag_vectors(self, ids):
        return [unit_tag_vector({tag: self._idf(tag) for tag in self._tags[self._row[int(item)]]}) for item in ids]

    def shared_tags(self, weights, k, exclude):
        if k <= 0:
            return []
        largest = MAX_TAG_SHARE * len(self._ids)
        scores: Counter = Counter()
        for item, weight in weights.items():
            for tag in self._tags[self._row[int(item)]]:
                rows = self._tagged[tag]
                if len(rows) > largest:
                    continue
                idf = self._idf(tag)
                for row in rows:
                    scores[int(self._ids[row])] += weight * idf
        ranked = sorted(((item, score) for item, score in scores.items()
                         if item not in exclude and item not in weights and score > 0),
                        key=lambda pair: (-pair[1], pair[0]))
        return [(item, float(score)) for item, score in ranked[:k]]
