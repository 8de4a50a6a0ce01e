"""Ranking: which videos a feed batch (or a partner's recommendation) holds, and in what order.

Django-free stages over candidate lists, looked up by name and timed; batch types map to the
builders that chain them. Everything here takes arrays and dataclasses and talks to the catalog
only through the ``Catalog`` protocol, so it is tested without a database.
"""
from .builders import *  # noqa: F401,F403
from .builders import BATCH_TYPES, BIASED, PERSONALIZED, RANDOM, SAMPLED, BatchParams, Candidate, Catalog, InMemoryCatalog, build_batch, param_errors  # noqa: F401
