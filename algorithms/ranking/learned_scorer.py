"""A learned pointwise scorer: a features matrix and 0/1 labels in, a model that scores rows out.

Deliberately general: it knows nothing of where the features come from (the offline evaluation's
hybrid trains it on the history split of a dataset; a reranker can train it on a feed's logs),
only their names, which it keeps so a caller cannot feed it columns in another order. The model
is scikit-learn's ``HistGradientBoostingClassifier``: it needs no feature scaling, handles
monotone and interacting features (a co-occurrence score means more with a longer history), and
trains in seconds on a few hundred thousand rows on two cores. Scores are the predicted
probability of a positive, comparable across users.

Training and scoring run its OpenMP loops on one thread: on a shared machine whose cores are
busy, OpenMP's waiting threads spin, and a fit of 1 200 rows measured 151 s on two threads
against 4 s on one (60 000 rows: 168 s against 6 s) at a load average of 11 on two cores.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits  # scikit-learn's own dependency


def one_thread():
    """scikit-learn's OpenMP loops limited to one thread, for a fit or a prediction (see the
    module's docstring; on a page's 200 candidates a busy machine's spinning threads made a
    prediction 8x slower, 165 ms against 22 ms)."""
    return threadpool_limits(1, user_api="openmp")


@dataclass
class LearnedScorer:
    """A fitted classifier over ``feature_names``; ``score`` gives each row's probability of a
    positive. ``model_id`` is its stored row's, when it was stored (the partner funnel's reranker,
    ``algorithms.ranking.learned``)."""

    feature_names: tuple[str, ...]
    model: object
    trained_rows: int = 0
    trained_positives: int = 0
    params: dict = field(default_factory=dict)
    model_id: int | None = None

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, feature_names: Sequence[str], *, seed: int = 0,
            max_iter: int = 200, learning_rate: float = 0.1, max_leaf_nodes: int = 31,
            estimator=None) -> LearnedScorer:
        """Fit ``estimator`` (an unfitted scikit-learn classifier; by default a
        ``HistGradientBoostingClassifier`` with the other arguments) on the rows."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        features = cls._checked(features, feature_names)
        labels = np.asarray(labels).astype(np.int8)
        if len(labels) != len(features):
            raise ValueError(f"{len(labels)} labels for {len(features)} rows")
        positives = int(labels.sum())
        if positives == 0 or positives == len(labels):
            raise ValueError("training needs both positive and negative rows")
        if estimator is None:
            estimator = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=learning_rate,
                                                       max_leaf_nodes=max_leaf_nodes, early_stopping="auto",
                                                       random_state=seed)
        params = {k: v for k, v in estimator.get_params().items()
                  if k in ("max_iter", "learning_rate", "max_leaf_nodes", "early_stopping", "random_state")}
        with one_thread():
            model = estimator.fit(features, labels)
        return cls(feature_names=tuple(feature_names), model=model, trained_rows=len(labels),
                   trained_positives=positives, params=params)

    @staticmethod
    def _checked(features: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(feature_names):
            raise ValueError(f"expected a (rows, {len(feature_names)}) features matrix "
                             f"({', '.join(feature_names)}), got shape {features.shape}")
        return features

    def score(self, features: np.ndarray) -> np.ndarray:
        features = self._checked(features, self.feature_names)
        if not len(features):
            return np.zeros(0)
        with one_thread():
            return self.model.predict_proba(features)[:, 1]

    def describe(self) -> dict:
        return {"model": type(self.model).__name__, "features": list(self.feature_names),
                "trained_rows": self.trained_rows, "trained_positives": self.trained_positives,
                "iterations": int(getattr(self.model, "n_iter_", 0)), "params": self.params}

    def to_bytes(self) -> bytes:
        """The fitted model, for ``from_bytes`` (the reranker stores it in the database, so
        every replica reads the same model)."""
        import joblib

        buffer = io.BytesIO()
        joblib.dump(self.model, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, feature_names: Sequence[str], model_id: int | None = None) -> LearnedScorer:
        """Only for bytes ``to_bytes`` wrote into our own database: unpickling runs code."""
        import joblib

        return cls(tuple(feature_names), joblib.load(io.BytesIO(bytes(data))), model_id=model_id)
