"""Confidence intervals for the A/B comparison, from the sums the database aggregates.

A mean comes in as ``(n, sum, sum of squares)`` and a rate as ``(n, hits)``, so no row has to
leave the database. Intervals are 95 % normal (Wald) intervals: the comparison's samples are
views and sessions by the hundred, where the normal approximation holds; under ``MIN_N`` a
figure has no interval. A difference from the control is significant when the 95 % interval of
the difference (the two standard errors combined, as Welch's) excludes 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: The two-sided 95 % quantile of the normal distribution.
Z95 = 1.959963984540054
#: Fewer observations than this give no interval (one observation has no spread).
MIN_N = 2


@dataclass(frozen=True)
class Estimate:
    """A mean or a rate with its 95 % interval (``low``/``high`` None when ``n`` < ``MIN_N``)."""

    n: int
    value: float | None
    standard_error: float | None

    @property
    def low(self) -> float | None:
        return None if self.standard_error is None else self.value - Z95 * self.standard_error

    @property
    def high(self) -> float | None:
        return None if self.standard_error is None else self.value + Z95 * self.standard_error


@dataclass(frozen=True)
class Difference:
    """``value`` = treatment - control, with its 95 % interval; ``significant`` when it excludes 0
    (None: not enough data on either side to say)."""

    value: float | None
    low: float | None
    high: float | None

    @property
    def significant(self) -> bool | None:
        if self.low is None:
            return None
        return self.low > 0 or self.high < 0


def mean(n: int, total: float, total_of_squares: float) -> Estimate:
    """The mean of ``n`` observations from their sum and sum of squares; its standard error uses
    the sample variance (n - 1)."""
    if n <= 0:
        return Estimate(0, None, None)
    value = total / n
    if n < MIN_N:
        return Estimate(n, value, None)
    # Rounding can make a zero variance slightly negative.
    variance = max(0.0, (total_of_squares - n * value * value) / (n - 1))
    return Estimate(n, value, math.sqrt(variance / n))


def rate(n: int, hits: int) -> Estimate:
    """The share of ``n`` trials that were hits (Wald standard error)."""
    if n <= 0:
        return Estimate(0, None, None)
    p = hits / n
    if n < MIN_N:
        return Estimate(n, p, None)
    return Estimate(n, p, math.sqrt(p * (1 - p) / n))


def difference(treatment: Estimate, control: Estimate) -> Difference:
    """Treatment minus control, with the 95 % interval of the difference of two independent
    estimates."""
    if treatment.value is None or control.value is None:
        return Difference(None, None, None)
    value = treatment.value - control.value
    if treatment.standard_error is None or control.standard_error is None:
        return Difference(value, None, None)
    se = float(np.hypot(treatment.standard_error, control.standard_error))
    return Difference(value, value - Z95 * se, value + Z95 * se)


# --- the comparison table ------------------------------------------------------------------------

#: The compared figures: key, label, unit.
METRICS = (
    ("watch_s", "Mean watch time per view", "s"),
    ("skip_rate", "Skip rate", "%"),
    ("long_view_rate", "Long-view rate (HIGH_ATTN)", "%"),
    ("session_length", "Session length", "impressions"),
)


@dataclass(frozen=True)
class Figure:
    """One metric of one algorithm, and (except for the control) its difference from the control."""

    estimate: Estimate
    versus_control: Difference | None


@dataclass(frozen=True)
class Arm:
    """One algorithm's row of the comparison. ``sums`` is anything with ``AlgorithmSums``'s
    attributes (``algorithms.ab_queries``)."""

    sums: object
    is_control: bool
    figures: dict[str, Figure]


def estimates(sums) -> dict[str, Estimate]:
    """The compared figures of one algorithm from its sums (watch time in seconds)."""
    return {
        "watch_s": mean(sums.views, sums.watched_ms / 1000, sums.watched_ms_squared / 1e6),
        "skip_rate": rate(sums.views, sums.skips),
        "long_view_rate": rate(sums.views, sums.long_views),
        "session_length": mean(sums.sessions, sums.impressions, sums.impressions_squared),
    }


def compare(all_sums, control_id: int) -> list[Arm]:
    """Each algorithm's figures and their differences from the control's (``control_id``)."""
    by_id = {s.algorithm_id: estimates(s) for s in all_sums}
    control = by_id.get(control_id)
    arms = []
    for s in all_sums:
        own = by_id[s.algorithm_id]
        is_control = s.algorithm_id == control_id
        arms.append(Arm(s, is_control, {
            key: Figure(own[key], None if is_control or control is None else difference(own[key], control[key]))
            for key, _, _ in METRICS
        }))
    return arms
