"""The feed state machine: blueprint specs, validation and transitions.

A blueprint is a small graph. Each state says how to build a batch (a batch
type and its params); each edge says where a session goes when a trigger
fires. Triggers are signal type names (``LIKE``, ``HIGH_ATTN``...), ``BATCH``
(fired by the caller right after a batch was served) or ``DEFAULT`` (the
fallback for any signal that has no edge of its own).

These are FirstBatch blueprint semantics; see ``algorithms.blueprints`` for
the JSON format. Everything here is plain data and pure functions: the Django
models convert to and from these dataclasses, so the rules live in one place
and are tested without a database.
"""
from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from .ranking import BATCH_TYPES, BatchParams, param_errors

# Triggers that are not signal types.
BATCH = "BATCH"
DEFAULT = "DEFAULT"
RESERVED_TRIGGERS = frozenset({BATCH, DEFAULT})

# Watch-derived signals.
HIGH_ATTN = "HIGH_ATTN"
MID_ATTN = "MID_ATTN"
LOW_ATTN = "LOW_ATTN"
SKIP = "SKIP"
# Explicit actions.
LIKE = "LIKE"
SHARE = "SHARE"
FOLLOW_CREATOR = "FOLLOW_CREATOR"
NOT_INTERESTED = "NOT_INTERESTED"

POSITIVE, NEUTRAL, NEGATIVE = 1, 0, -1


@dataclass(frozen=True)
class SignalSpec:
    """A signal type.

    ``weight`` scales the signal's vector in the user vector. ``polarity`` is
    +1 (pull toward the item), -1 (push away from it) or 0 (moves the state
    machine but contributes no vector, like ``SKIP`` by default; an operator
    may give ``SKIP`` a weight and polarity -1 to make skips count against
    what was skipped).
    """

    name: str
    weight: float
    polarity: int = POSITIVE


@dataclass(frozen=True)
class StateSpec:
    """A state: how to build the batches served while a session is in it.

    ``batch_type`` is one of ``BATCH_TYPES``; ``params`` are the raw batch
    params (validated by ``validate``, parsed by ``BatchParams.from_mapping``).
    ``params`` is stored read-only so a shared blueprint cannot be mutated.
    """

    name: str
    batch_type: str
    params: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    @functools.cached_property
    def batch_params(self) -> BatchParams:
        """``params`` parsed, once per state: blueprints are cached per algorithm version, so a
        batch does not parse them again. ValueError (naming the param) if they are invalid."""
        return BatchParams.from_mapping(self.params)


@dataclass(frozen=True)
class EdgeSpec:
    """Move from ``start`` to ``end`` when ``trigger`` fires."""

    start: str
    end: str
    trigger: str

    def __str__(self):
        return f"{self.start} --{self.trigger}--> {self.end}"


@dataclass(frozen=True)
class Thresholds:
    """Watch-time thresholds: absolute, in milliseconds (the seed app's defaults), and
    optionally relative to the video's duration.

    Absolute thresholds alone call every short video a skip, even one watched to the end; the
    ``*_ratio`` thresholds (watched / duration, above 1 when the video loops) let such a view
    count as attention. They are all set or all None (the default: absolute thresholds only,
    as in the seed app).
    """

    high_ms: int = 15000
    mid_ms: int = 12000
    low_ms: int = 9000
    high_ratio: float | None = None
    mid_ratio: float | None = None
    low_ratio: float | None = None

    @property
    def relative(self) -> bool:
        """Whether the watch-ratio thresholds apply (all three are set)."""
        return None not in (self.high_ratio, self.mid_ratio, self.low_ratio)


# Weights follow FirstBatch's published defaults where a counterpart exists:
# a full watch (FirstBatch WATCH) is the strongest evidence of interest at 20,
# a partial one sits at FirstBatch's GLANCE_VIEW (14), a barely-watched video
# at AUTO_PLAY (4). LIKE 8, SHARE 10 and FOLLOW 10 are FirstBatch's values.
# Signals on the same video add up, so a watched-and-liked video counts 28.
# NOT_INTERESTED has no FirstBatch counterpart; it is an explicit action, so it
# weighs as much as the strongest explicit positive one, pointing away.
DEFAULT_SIGNALS: tuple[SignalSpec, ...] = (
    SignalSpec(HIGH_ATTN, 20.0, POSITIVE),
    SignalSpec(MID_ATTN, 14.0, POSITIVE),
    SignalSpec(LOW_ATTN, 4.0, POSITIVE),
    SignalSpec(SKIP, 0.0, NEUTRAL),
    SignalSpec(LIKE, 8.0, POSITIVE),
    SignalSpec(SHARE, 10.0, POSITIVE),
    SignalSpec(FOLLOW_CREATOR, 10.0, POSITIVE),
    SignalSpec(NOT_INTERESTED, 10.0, NEGATIVE),
)

DEFAULT_THRESHOLDS = Thresholds()


@dataclass(frozen=True)
class Blueprint:
    """A complete algorithm: states, edges, the signal types it knows,
    the state new sessions start in, and its watch-time thresholds."""

    states: tuple[StateSpec, ...]
    edges: tuple[EdgeSpec, ...]
    signals: tuple[SignalSpec, ...]
    initial: str
    thresholds: Thresholds = DEFAULT_THRESHOLDS

    def __post_init__(self):
        # Accept lists from callers; store tuples so the blueprint is immutable.
        for name in ("states", "edges", "signals"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def state(self, name: str) -> StateSpec:
        """The state called ``name``; KeyError if there is none."""
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)

    def signal(self, name: str) -> SignalSpec:
        """The signal type called ``name``; KeyError if there is none."""
        for signal in self.signals:
            if signal.name == name:
                return signal
        raise KeyError(name)

    @property
    def signal_names(self) -> tuple[str, ...]:
        return tuple(signal.name for signal in self.signals)


#: The highest watch-ratio threshold: a view lasts at most ten plays of its video.
MAX_WATCH_RATIO = 10


def validate_thresholds(thresholds: Thresholds) -> list[str]:
    """Errors in watch-time thresholds: the ms ones must be integers with
    high > mid > low > 0; the ratios all None, or all finite numbers with
    0 < low < mid < high <= ``MAX_WATCH_RATIO``. Empty list = valid."""
    errors = []
    values = {"high_ms": thresholds.high_ms, "mid_ms": thresholds.mid_ms, "low_ms": thresholds.low_ms}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"threshold {name}={value!r} must be a whole number of milliseconds")
    if not errors and not thresholds.high_ms > thresholds.mid_ms > thresholds.low_ms > 0:
        errors.append(
            "watch-time thresholds must satisfy high > mid > low > 0 "
            f"(got high={thresholds.high_ms}, mid={thresholds.mid_ms}, low={thresholds.low_ms})"
        )
    errors.extend(_ratio_errors(thresholds))
    return errors


def _ratio_errors(thresholds: Thresholds) -> list[str]:
    ratios = {"high_ratio": thresholds.high_ratio, "mid_ratio": thresholds.mid_ratio, "low_ratio": thresholds.low_ratio}
    unset = [name for name, value in ratios.items() if value is None]
    if len(unset) == len(ratios):
        return []
    if unset:
        given = [name for name in ratios if name not in unset]
        return [
            f"watch-ratio threshold{'s' if len(given) > 1 else ''} {' and '.join(given)} "
            f"{'are' if len(given) > 1 else 'is'} set but {' and '.join(unset)} "
            f"{'are' if len(unset) > 1 else 'is'} not: set all three watch-ratio thresholds or none"
        ]
    errors = []
    for name, value in ratios.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            errors.append(f"threshold {name}={value!r} must be a number (watched time / video duration)")
    if errors:
        return errors
    if not MAX_WATCH_RATIO >= thresholds.high_ratio > thresholds.mid_ratio > thresholds.low_ratio > 0:
        errors.append(
            f"watch-ratio thresholds must satisfy {MAX_WATCH_RATIO} >= high > mid > low > 0 "
            f"(got high_ratio={thresholds.high_ratio}, mid_ratio={thresholds.mid_ratio}, "
            f"low_ratio={thresholds.low_ratio})"
        )
    return errors


def _signal_errors(signals) -> list[str]:
    errors = []
    for name, count in Counter(s.name for s in signals).items():
        if count > 1:
            errors.append(f"signal type '{name}' is defined {count} times")
    for signal in signals:
        if signal.name in RESERVED_TRIGGERS:
            errors.append(f"signal type '{signal.name}' uses a reserved trigger name")
        if signal.polarity not in (POSITIVE, NEUTRAL, NEGATIVE):
            errors.append(f"signal type '{signal.name}': polarity must be 1, 0 or -1 (got {signal.polarity!r})")
        weight = signal.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            errors.append(f"signal type '{signal.name}': weight must be a number >= 0 (got {weight!r})")
    return errors


def validate(blueprint: Blueprint) -> list[str]:
    """Every reason ``blueprint`` cannot run, as human-readable sentences.

    Each message names the state, edge or signal at fault. Checks: states are
    unique and have a known batch type and valid params; the initial state
    exists; every edge joins defined states with a known trigger; no state has
    two edges for the same trigger; every state has a BATCH edge and either a
    DEFAULT edge or an edge for every signal type; signal types and
    thresholds are sane. Empty list = valid.
    """
    errors: list[str] = []
    state_names = [state.name for state in blueprint.states]
    defined = set(state_names)
    signal_names = blueprint.signal_names

    if not blueprint.states:
        errors.append("the blueprint has no states")
    for name, count in Counter(state_names).items():
        if count > 1:
            errors.append(f"state '{name}' is defined {count} times")
    if blueprint.states and blueprint.initial not in defined:
        errors.append(f"initial state '{blueprint.initial}' is not defined")

    for state in blueprint.states:
        if state.batch_type not in BATCH_TYPES:
            errors.append(
                f"state '{state.name}': unknown batch type '{state.batch_type}' "
                f"(expected one of {', '.join(BATCH_TYPES)})"
            )
        errors.extend(f"state '{state.name}': {error}" for error in param_errors(state.params))

    known_triggers = set(signal_names) | RESERVED_TRIGGERS
    for edge in blueprint.edges:
        if edge.start not in defined:
            errors.append(f"edge {edge}: source state '{edge.start}' is not defined")
        if edge.end not in defined:
            errors.append(f"edge {edge}: target state '{edge.end}' is not defined")
        if edge.trigger not in known_triggers:
            errors.append(f"edge {edge}: trigger '{edge.trigger}' is not a signal type, {BATCH} or {DEFAULT}")

    targets: dict[tuple[str, str], list[str]] = {}
    for edge in blueprint.edges:
        targets.setdefault((edge.start, edge.trigger), []).append(edge.end)
    for (start, trigger), ends in targets.items():
        if len(ends) > 1:
            listed = ", ".join(f"'{end}'" for end in ends)
            errors.append(f"state '{start}' has {len(ends)} {trigger} edges (ambiguous): to {listed}")

    # Completeness is checked once per state name, so a duplicated state
    # does not repeat the same complaint.
    for name in dict.fromkeys(state_names):
        triggers = {trigger for (start, trigger) in targets if start == name}
        if BATCH not in triggers:
            errors.append(f"state '{name}' has no {BATCH} edge")
        if DEFAULT not in triggers:
            missing = [signal for signal in signal_names if signal not in triggers]
            if missing:
                errors.append(
                    f"state '{name}' has no {DEFAULT} edge and no edge for signal "
                    f"type{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
                )

    errors.extend(_signal_errors(blueprint.signals))
    errors.extend(validate_thresholds(blueprint.thresholds))
    return errors


def step(blueprint: Blueprint, state: str, trigger: str) -> str:
    """The state a session in ``state`` moves to when ``trigger`` fires.

    A signal follows its own edge, else the state's DEFAULT edge. ``BATCH``
    follows the BATCH edge only (DEFAULT stands in for signals, not for
    batches). With no matching edge the session stays put, which only a
    blueprint that fails ``validate`` allows. Raises ValueError for a state
    the blueprint does not define (e.g. an operator deleted it): the caller
    decides where such a session restarts.
    """
    if not any(s.name == state for s in blueprint.states):
        raise ValueError(f"state '{state}' is not defined in this blueprint")
    fallback = None
    for edge in blueprint.edges:
        if edge.start != state:
            continue
        if edge.trigger == trigger:
            return edge.end
        if edge.trigger == DEFAULT and trigger != BATCH and fallback is None:
            fallback = edge.end
    return fallback if fallback is not None else state


#: Watch-derived signals, most attentive first.
ATTENTION_LEVELS = (HIGH_ATTN, MID_ATTN, LOW_ATTN, SKIP)


def _attention(value: float, high: float, mid: float, low: float) -> str:
    if value >= high:
        return HIGH_ATTN
    if value >= mid:
        return MID_ATTN
    if value >= low:
        return LOW_ATTN
    return SKIP


def watch_time_to_signal(watched_ms: float, thresholds: Thresholds = DEFAULT_THRESHOLDS,
                         duration_ms: float | None = None) -> str:
    """The watch-derived signal for ``watched_ms`` milliseconds of viewing.

    Boundaries are inclusive: exactly ``high_ms`` is HIGH_ATTN, one
    millisecond less is MID_ATTN. When the thresholds are relative and the
    video's ``duration_ms`` is known (> 0), the watch ratio
    ``watched_ms / duration_ms`` is judged too (inclusive as well) and the
    more attentive of the two levels wins: a long watch of a long video and
    a full watch of a short one are both attention. Raises ValueError for
    negative times.
    """
    if watched_ms < 0:
        raise ValueError(f"watched time cannot be negative (got {watched_ms} ms)")
    level = _attention(watched_ms, thresholds.high_ms, thresholds.mid_ms, thresholds.low_ms)
    if thresholds.relative and duration_ms is not None and duration_ms > 0:
        relative = _attention(watched_ms / duration_ms, thresholds.high_ratio, thresholds.mid_ratio,
                              thresholds.low_ratio)
        level = min(level, relative, key=ATTENTION_LEVELS.index)
    return level
