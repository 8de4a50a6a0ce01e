"""A state's batch params: validated and parsed once per blueprint version.

The names and meanings of FirstBatch's params are kept (``last_n``, ``r``, ``mu``, ``alpha``,
``apply_threshold``, ``apply_mmr``...); tokfeed's own are documented on ``BatchParams``.
``param_errors`` is what the admin and blueprint import show an operator; ``BatchParams.
from_mapping`` accepts exactly what it accepts.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

_UNIT_INTERVAL = ("r", "mu", "alpha", "apply_threshold", "mmr_lambda", "exploit_above")
_POSITIVE_INT = ("last_n", "n_topics")
_NON_NEGATIVE_INT = ("score_last_n", "creator_cap", "creator_trust", "max_queries")
_BOOLEAN = ("apply_mmr", "popularity_weighted", "explore_regions")
_NON_NEGATIVE = ("decay", "explore_bonus")
_BOUNDED = {"kernel_width": (0.01, 1.0)}
# FirstBatch blueprints may carry this; tokfeed always removes duplicates
# (a session is never served a video twice), so only ``true`` is accepted.
_FIRSTBATCH_ONLY = ("remove_duplicates",)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _threshold_value(value):
    """FirstBatch writes ``apply_threshold`` either as a number or as
    ``[enabled, value]``; tokfeed uses the number, 0 meaning off."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], bool):
        enabled, threshold = value
        return threshold if enabled else 0.0
    return value


def param_errors(params: Mapping) -> list[str]:
    """Every problem with a state's raw params, as sentences naming the param.

    Unknown keys are errors (a typo must not silently do nothing). Empty list
    = valid. ``BatchParams.from_mapping`` accepts exactly the params this
    accepts.
    """
    if not isinstance(params, Mapping):
        return [f"params must be an object, not {type(params).__name__}"]
    known = {f.name for f in fields(BatchParams)} | set(_FIRSTBATCH_ONLY)
    errors = []
    for key, value in params.items():
        if key not in known:
            errors.append(f"unknown param '{key}' (known params: {', '.join(sorted(known))})")
        elif key == "apply_threshold":
            value = _threshold_value(value)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                errors.append(f"param apply_threshold={params[key]!r} must be a number between 0 and 1")
        elif key in _UNIT_INTERVAL:
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                errors.append(f"param {key}={value!r} must be a number between 0 and 1")
        elif key in _POSITIVE_INT:
            if not _is_number(value) or value != int(value) or value < 1:
                errors.append(f"param {key}={value!r} must be a positive whole number")
        elif key in _NON_NEGATIVE_INT:
            if not _is_number(value) or value != int(value) or value < 0:
                errors.append(f"param {key}={value!r} must be a whole number >= 0")
        elif key in _BOUNDED:
            low, high = _BOUNDED[key]
            if not _is_number(value) or not low <= value <= high:
                errors.append(f"param {key}={value!r} must be a number between {low} and {high}")
        elif key in _BOOLEAN:
            if not isinstance(value, bool):
                errors.append(f"param {key}={value!r} must be true or false")
        elif key in _NON_NEGATIVE:
            if not _is_number(value) or value < 0:
                errors.append(f"param {key}={value!r} must be a number >= 0")
        elif key == "remove_duplicates" and value is not True:
            errors.append("param remove_duplicates can only be true: a session is never served a video twice")
    return errors


@dataclass(frozen=True)
class BatchParams:
    """A state's batch params, parsed (FirstBatch names and meanings).

    - ``last_n``: how many recent signals shape the user vector;
    - ``r``: share of the batch that is random unseen items (exploration);
    - ``mu``: noise scale added to query vectors (exploration around an interest);
    - ``alpha``: 0 queries the mean interest, 1 each recent signal separately;
    - ``apply_threshold``: minimum cosine for personalised items (0 = off);
    - ``apply_mmr`` / ``mmr_lambda``: diversify personalised items with MMR;
    - ``n_topics``: topic clusters to sample from (sampled batches);
    - ``decay``: exponential down-weighting of older signals (tokfeed extension);
    - ``popularity_weighted``: random items drawn by popularity, not uniformly
      (tokfeed extension).

    tokfeed's evidence ranking (all off by default, so FirstBatch blueprints rank as there):

    - ``score_last_n``: how many recent signals, positive *and* negative (a skip is evidence),
      score each candidate (``evidence.score_candidates``); 0 ranks by similarity alone;
    - ``kernel_width``: how far a signal's evidence reaches, in cosine (the kernel's width);
    - ``explore_bonus``: weight of the bonus for candidates in regions the viewer has not been
      shown yet (optimism under uncertainty); with evidence ranking, the targeted slots
      consider a sample of unseen items besides the recalled ones;
    - ``exploit_above``: with evidence ranking, a targeted slot takes the best recalled video
      only while its estimated chance of being liked (``liked``) is above this; the slots left
      explore (``explore``), so a region whose positive was noise is left as soon as the skips
      around it say so, and exploration draws across regions instead of taking the sample's
      most remote items (0 = off: the bonus ranks a sample against the recalled videos);
    - ``explore_regions``: the ``r`` exploration slots cover the catalog's regions the viewer
      has not seen or rejected (the items of a sample farthest from that evidence), instead of
      being drawn uniformly;
    - ``creator_cap``: at most this many videos of one creator in a batch, counting the
      previous batch's too (0 = no cap);
    - ``creator_trust``: the cap no longer holds for a creator of whom the viewer has watched at
      least this many videos long among the recent signals (``score_last_n``, or ``last_n``),
      more than they skipped: agreement, where one long watch (perhaps noise) must not capture
      the feed; 0 = the cap always holds;
    - ``max_queries``: at most this many ANN queries per batch (the newest interests; each is an
      index scan); 0 = one per targeted slot, as FirstBatch.
    """

    last_n: int = 5
    r: float = 0.0
    mu: float = 0.0
    alpha: float = 0.0
    apply_threshold: float = 0.0
    apply_mmr: bool = False
    mmr_lambda: float = 0.5
    n_topics: int = 5
    decay: float = 0.0
    popularity_weighted: bool = False
    score_last_n: int = 0
    kernel_width: float = 0.1
    explore_bonus: float = 0.0
    exploit_above: float = 0.0
    explore_regions: bool = False
    creator_cap: int = 0
    creator_trust: int = 0
    max_queries: int = 0

    @classmethod
    def from_mapping(cls, params: Mapping) -> "BatchParams":
        """Parse raw params (a state's JSON). Missing keys take the defaults;
        unknown keys and invalid values raise ValueError naming the param."""
        errors = param_errors(params)
        if errors:
            raise ValueError("; ".join(errors))
        values = {}
        for f in fields(cls):
            if f.name not in params:
                continue
            value = params[f.name]
            if f.name == "apply_threshold":
                value = _threshold_value(value)
            if f.name in _POSITIVE_INT or f.name in _NON_NEGATIVE_INT:
                value = int(value)
            elif f.name in _UNIT_INTERVAL or f.name in _NON_NEGATIVE or f.name in _BOUNDED:
                value = float(value)
            values[f.name] = value
        return cls(**values)
