"""Ranking: which videos a feed batch (or a partner's recommendation) holds, and in what order.

Django-free stages over candidate lists (``stages.STAGES``: recall, score, diversify, cap,
explore, fill), each timed; batch types map to the builders that chain them
(``builders.BUILDERS``); ``evidence`` scores candidates against a viewer's positive and negative
signals. Everything takes arrays and dataclasses and reaches the catalog only through the
``Catalog`` protocol, so it is tested without a database.
"""
from . import learned  # noqa: F401 -- registers the funnel's learned reranker (and the funnel's stages)
from .builders import BATCH_TYPES, BIASED, BUILDERS, PERSONALIZED, RANDOM, SAMPLED, build_batch
from .candidates import SOURCE_ANN, SOURCE_BIAS, SOURCE_EXPLORE, SOURCE_RANDOM, SOURCE_TOPIC, Candidate
from .catalog import Catalog, InMemoryCatalog
from .params import BatchParams, param_errors
from .stages import OVERFETCH, STAGES, BatchContext

__all__ = [
    "BATCH_TYPES", "BIASED", "BUILDERS", "PERSONALIZED", "RANDOM", "SAMPLED", "build_batch",
    "SOURCE_ANN", "SOURCE_BIAS", "SOURCE_EXPLORE", "SOURCE_RANDOM", "SOURCE_TOPIC", "Candidate",
    "Catalog", "InMemoryCatalog", "BatchParams", "param_errors", "OVERFETCH", "STAGES", "BatchContext",
]
