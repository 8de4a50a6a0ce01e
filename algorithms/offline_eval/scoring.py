"""Scores of (user, item) rows from the history split: popularity, content, co-occurrence.

A ``Query`` is one user's candidates scored against one history: the user's whole history for a
test query; for a training query, the history without its last items, which become the
positives (``training_queries``). Every score leaves the user's own engagements out of the counts
it reads, so a training query sees what a test query sees: other users' histories.

- popularity: how many other users engaged with the item in their history;
- content: cosine between the item's embedding and the user's interest vector (the normalised
  mean of the embeddings of the query's history items that have text; 0 without one);
- co-occurrence: item-based collaborative filtering over other users' histories,
  ``sum over history items j of cooc(j, i) / sqrt(pop(j) pop(i))`` (cosine item similarity).
  It is computed as ``(h X^T) X`` over the sparse users x items matrix, a batch of queries at a
  time, never materialising the items x items matrix (memory stays linear in the events);
- cheap extras for the learned model: the best cosine to any single history item, the history's
  length, whether the user has an interest vector at all.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..vectors import normalize_rows

NEGATIVE_STRATEGIES = ("uniform", "popularity")
FEATURES = ("popularity", "content", "cooccurrence", "content_max", "history_length", "has_interest")
#: The single methods compared with the hybrid: each is one column of the features.
SINGLE_METHODS = ("popularity", "content", "cooccurrence")


@dataclass
class History:
    """The history split as a users x items matrix of engagements (label 1), and counts from it."""

    matrix: sp.csr_matrix  # float32, 1 where the user engaged with the item in history
    popularity: np.ndarray  # per item: users who engaged with it in history

    @classmethod
    def build(cls, histories: list[np.ndarray], n_items: int) -> History:
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        indptr = np.r_[0, np.cumsum(lengths)]
        indices = np.concatenate(histories) if len(histories) else np.zeros(0, dtype=np.int64)
        matrix = sp.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr),
                               shape=(len(histories), n_items))
        matrix.sort_indices()
        popularity = np.bincount(indices, minlength=n_items).astype(np.int64)
        return cls(matrix=matrix, popularity=popularity)

    @property
    def item_weights(self) -> np.ndarray:
        """1 / sqrt(popularity), 0 for items nobody engaged with."""
        with np.errstate(divide="ignore"):
            return np.where(self.popularity > 0, 1.0 / np.sqrt(np.maximum(self.popularity, 1)), 0.0).astype(np.float32)


def sample_negatives(rng: np.random.Generator, cdf: np.ndarray, exclude: np.ndarray, count: int) -> np.ndarray:
    """``count`` distinct items drawn from the distribution whose cumulative weights are ``cdf``,
    none in ``exclude``; fewer when fewer are left to draw. Rejection sampling, which is cheap
    when the excluded items hold a small share of the weight (the usual case); else the rest is
    drawn from the weights left."""
    excluded = set(exclude.tolist())
    chosen: dict[int, None] = {}
    for _ in range(20):
        if len(chosen) >= count:
            break
        draws = np.searchsorted(cdf, rng.random(2 * (count - len(chosen)) + 8) * cdf[-1], side="right")
        for item in draws.tolist():
            if item not in excluded and item not in chosen:
                chosen[item] = None
                if len(chosen) == count:
                    break
    if len(chosen) < count:
        weights = np.diff(np.r_[0.0, cdf])
        weights[list(excluded | set(chosen))] = 0.0
        left = np.flatnonzero(weights)
        take = min(count - len(chosen), len(left))
        if take:
            rest = rng.choice(left, size=take, replace=False, p=weights[left] / weights[left].sum())
            chosen.update(dict.fromkeys(rest.tolist()))
    return np.fromiter(chosen, dtype=np.int64, count=len(chosen))


def sampling_cdf(strategy: str, popularity: np.ndarray) -> np.ndarray:
    """Cumulative weights for ``sample_negatives``: every item alike (``uniform``), or in
    proportion to its history popularity (``popularity``; an item nobody engaged with is never drawn)."""
    if strategy == "uniform":
        weights = np.ones(len(popularity))
    elif strategy == "popularity":
        weights = popularity.astype(np.float64)
    else:
        raise ValueError(f"negatives are sampled {' or '.join(NEGATIVE_STRATEGIES)}, not {strategy!r}")
    if weights.sum() == 0:
        raise ValueError("no item has any weight to sample negatives from (no engagement in the history split)")
    return np.cumsum(weights)


@dataclass
class Queries:
    """Queries and their candidate rows; query ``q``'s rows are ``offsets[q]:offsets[q + 1]``."""

    users: np.ndarray  # (queries,) user index
    histories: list[np.ndarray]  # (queries,) the history each query is scored against
    offsets: np.ndarray  # (queries + 1,)
    items: np.ndarray  # (rows,)
    labels: np.ndarray  # (rows,) int8

    @classmethod
    def build(cls, users: list[int], histories: list[np.ndarray], items: list[np.ndarray],
              labels: list[np.ndarray]) -> Queries:
        offsets = np.r_[0, np.cumsum([len(i) for i in items])].astype(np.int64)
        return cls(
            users=np.asarray(users, dtype=np.int64), histories=histories, offsets=offsets,
            items=np.concatenate(items).astype(np.int64) if items else np.zeros(0, dtype=np.int64),
            labels=np.concatenate(labels).astype(np.int8) if labels else np.zeros(0, dtype=np.int8),
        )

    def __len__(self) -> int:
        return len(self.users)

    @property
    def row_query(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.users)), np.diff(self.offsets))


def training_queries(histories: list[np.ndarray], history_seen: list[np.ndarray], cdf: np.ndarray,
                     rng: np.random.Generator, *, holdout: int, negatives: int, max_users: int) -> Queries:
    """Queries made from the history split alone: for each sampled user with more than
    ``holdout`` engagements, the last ``holdout`` are the positives, the earlier ones the
    history, and ``negatives`` items drawn from ``cdf`` that the user's history never touched
    are the negatives."""
    eligible = np.array([u for u, h in enumerate(histories) if len(h) > holdout], dtype=np.int64)
    if len(eligible) > max_users:
        eligible = np.sort(rng.choice(eligible, size=max_users, replace=False))
    users, kept, items, labels = [], [], [], []
    for u in eligible.tolist():
        history = histories[u]
        drawn = sample_negatives(rng, cdf, history_seen[u], negatives)
        users.append(u)
        kept.append(history[:-holdout])
        items.append(np.r_[history[-holdout:], drawn])
        labels.append(np.r_[np.ones(holdout, dtype=np.int8), np.zeros(len(drawn), dtype=np.int8)])
    return Queries.build(users, kept, items, labels)


def interest_vectors(queries: Queries, embeddings: np.ndarray, has_text: np.ndarray) -> np.ndarray:
    """Per query: the normalised mean embedding of its history items with text; zero rows for
    queries whose history has none."""
    lengths = np.array([len(h) for h in queries.histories], dtype=np.int64)
    flat = np.concatenate(queries.histories) if len(queries) else np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(queries)), lengths)
    flat_with_text = has_text[flat]
    sums = np.zeros((len(queries), embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, owner[flat_with_text], embeddings[flat[flat_with_text]])
    return normalize_rows(sums)


def features(queries: Queries, history: History, embeddings: np.ndarray, has_text: np.ndarray, *,
             batch_size: int = 256, advance: Callable[[int], None] = lambda n: None) -> np.ndarray:
    """The (rows, len(FEATURES)) feature matrix of every row of ``queries``; columns in ``FEATURES`` order."""
    rows = len(queries.items)
    out = np.zeros((rows, len(FEATURES)), dtype=np.float32)
    matrix = history.matrix
    own = np.asarray(matrix[queries.users[queries.row_query], queries.items]).ravel() if rows else np.zeros(0)

    out[:, 0] = history.popularity[queries.items] - own

    interests = interest_vectors(queries, embeddings, has_text)
    has_interest = np.linalg.norm(interests, axis=1) > 0
    row_query = queries.row_query
    out[:, 1] = np.einsum("ij,ij->i", embeddings[queries.items], interests[row_query])
    out[:, 4] = np.array([len(h) for h in queries.histories], dtype=np.float32)[row_query]
    out[:, 5] = has_interest[row_query]

    weights = history.item_weights
    matrix_t = matrix.T.tocsr()
    for start in range(0, len(queries), batch_size):
        stop = min(start + batch_size, len(queries))
        hist = queries.histories[start:stop]
        lengths = np.array([len(h) for h in hist], dtype=np.int64)
        flat = np.concatenate(hist) if len(hist) else np.zeros(0, dtype=np.int64)
        weighted = sp.csr_matrix((weights[flat], flat, np.r_[0, np.cumsum(lengths)]),
                                 shape=(stop - start, history.matrix.shape[1]))
        # overlap[q, v]: the weighted count of query q's history items user v engaged with.
        overlap = (weighted @ matrix_t).toarray()
        overlap[np.arange(stop - start), queries.users[start:stop]] = 0.0  # the user's own row
        scores = (matrix_t @ overlap.T).T  # (batch, items): overlap @ X, computed as X^T @ overlap^T
        lo, hi = queries.offsets[start], queries.offsets[stop]
        local = row_query[lo:hi] - start
        out[lo:hi, 2] = scores[local, queries.items[lo:hi]] * weights[queries.items[lo:hi]]

        for q in range(start, stop):
            h = queries.histories[q]
            h = h[has_text[h]]
            r = slice(queries.offsets[q], queries.offsets[q + 1])
            if len(h):
                out[r, 3] = (embeddings[queries.items[r]] @ embeddings[h].T).max(axis=1)
        advance(stop - start)
    return out
