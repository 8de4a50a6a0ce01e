"""A state's batch params: declared once, validated and parsed once per blueprint version.

The names and meanings of FirstBatch's params are kept (``last_n``, ``r``, ``mu``, ``alpha``,
``apply_threshold``, ``apply_mmr``...); tokfeed's own are marked as extensions. ``PARAMS``
declares each param once (kind, range, the batch types it shapes, what it does to a batch):
``param_errors`` (what the admin and blueprint import show an operator) and
``BatchParams.from_mapping`` check against it, and the admin's state form is built from it.
``BatchParams.from_mapping`` accepts exactly what ``param_errors`` accepts.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from .evidence import MIN_RELATIVE_DENSITY

# Batch type names (``builders`` registers them; spelled here so params do not import builders).
_ALL = ("random", "sampled", "personalized", "biased")
_TARGETED = ("sampled", "personalized", "biased")  # batches with slots that are not random
_AROUND = ("personalized", "biased")  # batches recalled around query vectors

UNIT = "unit"            # a number from 0 to 1
COUNT = "count"          # a whole number >= 1
WHOLE = "whole"          # a whole number >= 0
NUMBER = "number"        # a number >= 0
BOUNDED = "bounded"      # a number from ``minimum`` to ``maximum``
FLAG = "flag"            # true or false


@dataclass(frozen=True)
class ParamSpec:
    """One batch param: its kind and range, the batch types it shapes, and what it does."""

    name: str
    kind: str
    help: str
    batch_types: tuple[str, ...] = _ALL
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self):
        bounds = {UNIT: (0.0, 1.0), COUNT: (1, None), WHOLE: (0, None), NUMBER: (0.0, None), FLAG: (None, None)}
        if self.kind in bounds:
            object.__setattr__(self, "minimum", bounds[self.kind][0])
            object.__setattr__(self, "maximum", bounds[self.kind][1])

    @property
    def whole(self) -> bool:
        return self.kind in (COUNT, WHOLE)

    @property
    def default(self):
        return next(f.default for f in fields(BatchParams) if f.name == self.name)

    def error(self, value) -> str | None:
        """Why ``value`` is not a valid value of this param (None when it is), naming it."""
        raw = value
        if self.name == "apply_threshold":
            value = _threshold_value(value)
        if self.kind == FLAG:
            return None if isinstance(value, bool) else f"param {self.name}={raw!r} must be true or false"
        if self.kind == UNIT or self.kind == BOUNDED:
            if not _is_number(value) or not self.minimum <= value <= self.maximum:
                low, high = ("0", "1") if self.kind == UNIT else (self.minimum, self.maximum)
                return f"param {self.name}={raw!r} must be a number between {low} and {high}"
        elif self.kind == COUNT:
            if not _is_number(value) or value != int(value) or value < 1:
                return f"param {self.name}={raw!r} must be a positive whole number"
        elif self.kind == WHOLE:
            if not _is_number(value) or value != int(value) or value < 0:
                return f"param {self.name}={raw!r} must be a whole number >= 0"
        elif self.kind == NUMBER:
            if not _is_number(value) or value < 0:
                return f"param {self.name}={raw!r} must be a number >= 0"
        return None

    def parse(self, value):
        """A valid raw value as ``BatchParams`` holds it."""
        if self.name == "apply_threshold":
            value = _threshold_value(value)
        if self.kind == FLAG:
            return value
        return int(value) if self.whole else float(value)


#: Every batch param, in the order the admin shows them.
PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("last_n", COUNT, "How many recent signals shape the viewer's interest (the query vectors).",
              _TARGETED),
    ParamSpec("r", UNIT, "Share of the batch filled with random unseen videos (exploration); 0 = none, "
                         "1 = the whole batch.", _TARGETED),
    ParamSpec("mu", UNIT, "Noise added to each query vector: explores around the viewer's interest "
                          "(0 = exactly on it).", _AROUND),
    ParamSpec("alpha", UNIT, "0 queries the mean of the recent signals; 1 queries each recent signal "
                             "separately (several interests at once). In biased batches: how far from the "
                             "bias toward the viewer.", _AROUND),
    ParamSpec("apply_threshold", UNIT, "Minimum cosine similarity for a personalised video (0 = off); "
                                       "slots left empty are filled at random.", _AROUND),
    ParamSpec("apply_mmr", FLAG, "Diversify the personalised videos with maximal marginal relevance.", _AROUND),
    ParamSpec("mmr_lambda", UNIT, "With MMR: 1 ranks by relevance alone, 0 by diversity alone.", _AROUND),
    ParamSpec("n_topics", COUNT, "Topic clusters a sampled batch draws from (one video per topic).",
              ("sampled",)),
    ParamSpec("decay", NUMBER, "Exponential down-weighting of older signals (0 = all count alike; "
                               "tokfeed extension)."),
    ParamSpec("popularity_weighted", FLAG, "Random videos are drawn by popularity instead of uniformly "
                                           "(tokfeed extension)."),
    ParamSpec("score_last_n", WHOLE, "How many recent signals, watched and skipped, score each candidate "
                                     "(evidence ranking; 0 = rank by similarity alone)."),
    ParamSpec("kernel_width", BOUNDED, "How far a signal's evidence reaches, in cosine (evidence ranking).",
              minimum=0.01, maximum=1.0),
    ParamSpec("tag_weight", NUMBER, "Evidence ranking: how much sharing rare hashtags with a watched or skipped "
                                    "video counts, next to vector similarity; above 0 the targeted slots also "
                                    "recall videos tagged like the recent long watches (0 = vectors only)."),
    ParamSpec("corroboration", NUMBER, "Evidence ranking: how much the skips near a long watch discount it "
                                       "(a long watch whose neighbours the viewer skips is believed less; "
                                       "0 = every long watch counts in full).", _TARGETED),
    ParamSpec("explore_bonus", NUMBER, "Bonus for videos in regions the viewer has not been shown yet "
                                       "(evidence ranking; 0 = none).", _AROUND),
    ParamSpec("exploit_above", UNIT, "Evidence ranking: a targeted slot takes the best recalled video only while "
                                     "its chance of being liked is above this; the other slots explore "
                                     "(0 = off).", _TARGETED),
    ParamSpec("relative_coverage", FLAG, "Evidence ranking and region exploration judge how much of a region the "
                                         "viewer has been shown against how many videos lie there (estimated from "
                                         "the random draws), so a crowded region is not taken for tried (false = "
                                         "by what was shown alone)."),
    ParamSpec("min_relative_density", BOUNDED, "With relative coverage: a region counts as at least this crowded, "
                                               "relative to a typical one (1 = sparse regions are judged by what "
                                               "was shown alone, only crowded ones relative to their size; lower "
                                               "= what was shown near an isolated video counts up to 1 / this "
                                               "times).", minimum=0.01, maximum=1.0),
    ParamSpec("explore_regions", FLAG, "The random slots cover regions the viewer has not seen or rejected, "
                                       "instead of being drawn uniformly."),
    ParamSpec("creator_cap", WHOLE, "At most this many videos of one creator in a batch, counting the "
                                    "previous batch (0 = no cap)."),
    ParamSpec("creator_trust", WHOLE, "The creator cap yields to a creator of whom the viewer has watched at "
                                      "least this many videos long, more than they skipped (0 = the cap "
                                      "always holds)."),
    ParamSpec("max_queries", WHOLE, "At most this many nearest-neighbour searches per batch, the newest "
                                    "interests first (0 = one per personalised slot).", _AROUND),
)
PARAM_SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMS}

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
    known = set(PARAM_SPECS) | set(_FIRSTBATCH_ONLY)
    errors = []
    for key, value in params.items():
        if key not in known:
            errors.append(f"unknown param '{key}' (known params: {', '.join(sorted(known))})")
        elif key in PARAM_SPECS:
            error = PARAM_SPECS[key].error(value)
            if error:
                errors.append(error)
        elif key == "remove_duplicates" and value is not True:
            errors.append("param remove_duplicates can only be true: a session is never served a video twice")
    return errors


@dataclass(frozen=True)
class BatchParams:
    """A state's batch params, parsed; what each does is declared in ``PARAMS``.

    FirstBatch's: ``last_n``, ``r``, ``mu``, ``alpha``, ``apply_threshold``, ``apply_mmr`` /
    ``mmr_lambda``, ``n_topics``. tokfeed extensions: ``decay`` and ``popularity_weighted``;
    and the evidence ranking, all off by default so FirstBatch blueprints rank as there:
    ``score_last_n`` (``evidence.score_candidates``), ``kernel_width``, ``tag_weight`` (shared
hashtags as evidence, and tag recall), ``corroboration`` (``evidence.trust``), ``explore_bonus`` (with
    evidence ranking, the targeted slots consider a sample of unseen items besides the recalled
    ones), ``exploit_above``, ``explore_regions``, ``relative_coverage`` (coverage read against the catalog's
    density, a region counting as at least ``min_relative_density`` as crowded as a typical one), ``creator_cap``, ``creator_trust`` (the cap
    yields only to agreement: several long watches of a creator, never one) and ``max_queries``
    (each ANN query is an index scan).
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
    tag_weight: float = 0.0
    corroboration: float = 0.0
    explore_bonus: float = 0.0
    exploit_above: float = 0.0
    relative_coverage: bool = False
    min_relative_density: float = MIN_RELATIVE_DENSITY
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
        return cls(**{name: spec.parse(params[name]) for name, spec in PARAM_SPECS.items() if name in params})
