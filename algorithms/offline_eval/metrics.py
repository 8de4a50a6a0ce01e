"""Per-user ranking metrics over grouped rows, and their means.

Rows come grouped by query (one query = one user's candidates): ``offsets[q]:offsets[q + 1]``
are query ``q``'s rows. Labels are 1 (engaged) or 0.

- ROC AUC of a query is the probability that a random positive scores above a random negative,
  ties counting one half (Mann-Whitney); undefined (NaN) without both a positive and a negative.
- NDCG@k and recall@k rank a query's rows by score, ties broken by ``tiebreak`` (a fixed random
  order, the same for every method, so a constant scorer gets no lucky order); binary gains,
  ``1 / log2(rank + 1)`` with ranks from 1; undefined (NaN) without a positive.
- Means are over the queries where the metric is defined.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

ROC_GRID = np.linspace(0.0, 1.0, 101)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of one query; NaN without both classes."""
    labels = np.asarray(labels)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks: a tie counts one half
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def ranks_within(scores: np.ndarray, offsets: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Each row's 0-based rank within its query, best score first, ties by ``tiebreak``."""
    query = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    order = np.lexsort((tiebreak, -np.asarray(scores, dtype=np.float64), query))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order)) - offsets[query[order]]
    return ranks


def ndcg_and_recall(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray, tiebreak: np.ndarray, *,
                    ndcg_k: int = 10, recall_ks: tuple[int, ...] = (10, 50)) -> dict[str, np.ndarray]:
    """Per query: ``ndcg@{ndcg_k}`` and ``recall@{k}`` arrays, NaN where there is no positive."""
    labels = np.asarray(labels, dtype=np.int64)
    n_queries = len(offsets) - 1
    query = np.repeat(np.arange(n_queries), np.diff(offsets))
    ranks = ranks_within(scores, offsets, tiebreak)
    positives = np.bincount(query, weights=labels, minlength=n_queries)
    defined = positives > 0
    out: dict[str, np.ndarray] = {}

    gains = np.where((labels == 1) & (ranks < ndcg_k), 1.0 / np.log2(ranks + 2.0), 0.0)
    dcg = np.bincount(query, weights=gains, minlength=n_queries)
    ideal_cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(ndcg_k) + 2.0))])
    idcg = ideal_cumulative[np.minimum(positives, ndcg_k).astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[f"ndcg@{ndcg_k}"] = np.where(defined, dcg / np.where(defined, idcg, 1.0), np.nan)
        for k in recall_ks:
            hits = np.bincount(query, weights=(labels == 1) & (ranks < k), minlength=n_queries)
            out[f"recall@{k}"] = np.where(defined, hits / np.where(defined, positives, 1.0), np.nan)
    return out


def roc_curve_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) of one query with both classes, one point per distinct score from the highest
    down (so a tie is a diagonal segment and the area under the points is ``auc``)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tp = np.cumsum(sorted_labels == 1)[last_of_tie]
    fp = np.cumsum(sorted_labels == 0)[last_of_tie]
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def mean_roc_curve(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray,
                   grid: np.ndarray = ROC_GRID) -> np.ndarray:
    """The per-query ROC curves averaged vertically on ``grid`` (false-positive rates): the
    curve whose area is close to the mean per-query AUC. Queries without both classes are left out."""
    total = np.zeros(len(grid))
    counted = 0
    for q in range(len(offsets) - 1):
        rows = slice(offsets[q], offsets[q + 1])
        y = labels[rows]
        if y.min() == y.max():
            continue
        fpr, tpr = roc_curve_points(scores[rows], y)
        total += np.interp(grid, fpr, tpr)
        counted += 1
    return total / max(counted, 1)


def per_query_auc(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.array([auc(scores[offsets[q]:offsets[q + 1]], labels[offsets[q]:offsets[q + 1]])
                     for q in range(len(offsets) - 1)])


def summarize(scores: np.ndarray, labels: np.ndarray, offsets: np.ndarray, tiebreak: np.ndarray, *,
              ndcg_k: int = 10, recall_ks: tuple[int, ...] = (10, 50)) -> dict[str, float]:
    """Mean per-query ``auc``, ``ndcg@k`` and ``recall@k``s, and how many queries each averages."""
    per_query = {"auc": per_query_auc(scores, labels, offsets)}
    per_query.update(ndcg_and_recall(scores, labels, offsets, tiebreak, ndcg_k=ndcg_k, recall_ks=recall_ks))
    out: dict[str, float] = {}
    for name, values in per_query.items():
        defined = ~np.isnan(values)
        out[name] = float(values[defined].mean()) if defined.any() else float("nan")
    out["users_auc"] = int((~np.isnan(per_query["auc"])).sum())
    out["users_ranked"] = int((~np.isnan(per_query[f"ndcg@{ndcg_k}"])).sum())
    return out
