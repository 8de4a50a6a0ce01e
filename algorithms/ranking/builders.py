"""Batch types and the builders that make them: ``build_batch`` looks the type up in ``BUILDERS``.

A builder chains stages (``stages``) into a batch for one state. Guarantees, whatever the
params: a batch holds exactly ``min(batch_size, unseen items)`` candidates, never an item in
``seen`` and never the same item twice; given the same ``rng`` state the result is the same.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..vectors import WeightedSignal, interest_vectors, normalize
from . import stages
from .candidates import SOURCE_ANN, SOURCE_BIAS, Candidate
from .catalog import Catalog
from .params import BatchParams
from .stages import BatchContext, run

RANDOM = "random"
SAMPLED = "sampled"
PERSONALIZED = "personalized"
BIASED = "biased"

Builder = Callable[[BatchContext, int], list[Candidate]]
#: The builder of each batch type's targeted slots.
BUILDERS: dict[str, Builder] = {}
builder = stages.registrar(BUILDERS, "batch type")


def _round_half_up(x: float) -> int:
    # Python's round() rounds 2.5 to 2; a share of 0.5 of 5 slots should be 3.
    return int(math.floor(x + 0.5))


def _around(context: BatchContext, queries: list[np.ndarray], k: int, source: str) -> list[Candidate]:
    """``k`` targeted items around ``queries``: ranked by evidence when the state weighs it
    (``score_last_n``; recalled items plus an unseen sample for the exploration bonus), else
    FirstBatch's way (round-robin or MMR by similarity); per-creator cap either way."""
    params = context.params
    if k <= 0:
        return []
    recalled = run("recall_ann", context, queries, k, source) if queries else []
    if params.score_last_n > 0 and params.tag_weight > 0:
        recalled += run("recall_tags", context, k)
    if params.score_last_n > 0:
        if not recalled:
            return run("explore", context, k)  # no interest yet: every slot explores
        if params.exploit_above > 0:
            # Exploit what the evidence says is liked; explore with the rest.
            exploiting = run("rank_by_evidence", context, recalled, k, min_liked=params.exploit_above)
            return exploiting + run("explore", context, k - len(exploiting))
        sample = run("recall_random", context, k * stages.EXPLORE_SAMPLE_PER_SLOT) if params.explore_bonus > 0 else []
        return run("rank_by_evidence", context, recalled + sample, k)
    if not recalled:
        return []
    if params.apply_mmr:
        # With a cap, MMR orders the whole pool so capped creators' places can be taken.
        recalled = run("diversify_mmr", context, recalled, len(recalled) if params.creator_cap else k)
    return run("cap_creators", context, recalled, k)


@builder(RANDOM)
def _random(context: BatchContext, k: int) -> list[Candidate]:
    return []  # every slot is an exploration slot (``build_batch``)


@builder(SAMPLED)
def _sampled(context: BatchContext, k: int) -> list[Candidate]:
    chosen = run("recall_topics", context, k)
    context.taken.update(c.id for c in chosen)
    return chosen


@builder(PERSONALIZED)
def _personalized(context: BatchContext, k: int) -> list[Candidate]:
    params = context.params
    queries = interest_vectors(context.signals, params.last_n, params.alpha, params.decay)
    if not queries and params.score_last_n == 0:
        return []  # no interest yet: random fill
    return _around(context, queries, k, SOURCE_ANN)


@builder(BIASED)
def _biased(context: BatchContext, k: int) -> list[Candidate]:
    if any(normalize(v).any() for v in context.bias_vectors):
        return _around(context, stages.bias_queries(context.bias_vectors, context.signals, context.params), k, SOURCE_BIAS)
    return _personalized(context, k)


BATCH_TYPES = tuple(BUILDERS)


def build_batch(
    batch_type: str,
    params: BatchParams,
    catalog: Catalog,
    signals: Sequence[WeightedSignal],
    batch_size: int,
    seen: frozenset[int],
    rng: np.random.Generator,
    bias_vectors: Sequence[np.ndarray] = (),
    *,
    recent_creators: Sequence[int | None] = (),
    timings: dict[str, float] | None = None,
) -> list[Candidate]:
    """The next batch for a session.

    ``round(r * batch_size)`` slots are exploration (``stages.explore``: uniform, or covering
    the catalog's regions with ``explore_regions``), spread through the batch; the rest are
    filled by the batch type's builder:

    - ``random``: every slot random (uniform, or by popularity);
    - ``sampled``: one item from each of ``n_topics`` topic clusters, drawn toward the
      viewer's interest when there is one (uniformly otherwise);
    - ``personalized``: ANN recall around ``interest_vectors`` (with ``mu`` noise), keeping
      cosines >= ``apply_threshold``, round-robin across queries or MMR-diversified, or ranked
      by evidence (positives and negatives, ``score_last_n``); random when the viewer has no
      interest and the state weighs no evidence;
    - ``biased``: the same around ``bias_vectors`` blended with the viewer's interest
      (``stages.bias_queries``); plain personalised without bias vectors.

    Slots the builder cannot fill are filled with random unseen items and appended.
    ``signals`` are chronological (oldest first); ``recent_creators`` are the previous batch's
    (for ``creator_cap``). Each stage's wall time (ms) is added to ``timings`` when given.
    """
    if batch_type not in BUILDERS:
        raise ValueError(f"unknown batch type '{batch_type}' (expected one of {', '.join(BATCH_TYPES)})")
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0 (got {batch_size})")
    context = BatchContext(params, catalog, signals, batch_size, frozenset(seen), rng, bias_vectors,
                           recent_creators, timings if timings is not None else {})

    n_random = batch_size if batch_type == RANDOM else _round_half_up(params.r * batch_size)
    targeted = BUILDERS[batch_type](context, batch_size - n_random)
    context.taken.update(c.id for c in targeted)
    exploring = run("explore", context, n_random)
    return run("fill", context, stages.interleave(targeted, exploring))
