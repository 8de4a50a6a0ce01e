"""Celery tasks of the algorithms app: training the partner funnel's learned reranker.

``train_reranker`` reads the feed's log (``feed.selectors.reranker_log``: impressions reacted
to and the signals they produced) with the catalog's vectors and facts, turns it into examples
(``ranking.learned.examples_from_log``), fits and measures a model (``ranking.learned.fit``) and
stores it (``services.save_reranker_model``); from then on recommendations rerank with it. A log
too small to learn from stores nothing and says why: the hand-weighted reranker stays. Run it
on a schedule (celery beat, or cron with ``manage.py train_reranker``) as the log grows.
"""
from __future__ import annotations

import logging

from celery import shared_task

from feed.selectors import reranker_log

from .ranking.learned import MIN_EXAMPLES, TrainingRefused, examples_from_log, fit
from .recommendations import with_catalog
from .services import save_reranker_model

logger = logging.getLogger(__name__)


@shared_task(name="algorithms.train_reranker")
def train_reranker(seed: int = 0, min_examples: int = MIN_EXAMPLES) -> dict:
    """Train and store a reranker from the log; returns ``{"status": "trained", "model": id,
    "examples", "positives", **metrics}`` or ``{"status": "refused", "reason", "examples"}``."""
    X, y, groups = examples_from_log(with_catalog(reranker_log()))
    try:
        trained = fit(X, y, groups, seed=seed, min_examples=min_examples)
    except TrainingRefused as exc:
        logger.info("reranker not trained: %s", exc)
        return {"status": "refused", "reason": str(exc), "examples": int(len(y))}
    row = save_reranker_model(trained)
    logger.info("reranker %s trained on %s examples: validation AUC %.3f", row.pk, row.examples,
                trained.metrics["validation_auc"])
    return {"status": "trained", "model": row.pk, "examples": row.examples, "positives": row.positives,
            **trained.metrics}
