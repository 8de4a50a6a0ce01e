"""The A/B comparison's statistics on numbers worked out by hand."""
import math

import numpy as np
import pytest

from algorithms import ab_stats


def sums(values):
    values = np.asarray(values, dtype=float)
    return len(values), values.sum(), (values ** 2).sum()


def test_mean_and_interval_of_known_numbers():
    # 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample variance 32/7, standard error sqrt(32/7/8).
    est = ab_stats.mean(*sums([2, 4, 4, 4, 5, 5, 7, 9]))
    se = math.sqrt(32 / 7 / 8)
    assert est.n == 8
    assert est.value == pytest.approx(5.0)
    assert est.standard_error == pytest.approx(se)
    assert est.low == pytest.approx(5 - 1.959964 * se, abs=1e-6)
    assert est.high == pytest.approx(5 + 1.959964 * se, abs=1e-6)


def test_rate_and_interval_of_known_numbers():
    est = ab_stats.rate(100, 25)  # p = 0.25, se = sqrt(0.25 * 0.75 / 100) = 0.0433
    assert est.value == 0.25
    assert est.standard_error == pytest.approx(math.sqrt(0.1875 / 100))
    assert (est.low, est.high) == pytest.approx((0.25 - 1.959964 * 0.0433013, 0.25 + 1.959964 * 0.0433013), abs=1e-6)


def test_no_data_and_one_observation_have_no_interval():
    assert ab_stats.mean(0, 0, 0).value is None
    one = ab_stats.mean(1, 7, 49)
    assert one.value == 7 and one.low is None
    assert ab_stats.rate(0, 0).value is None
    assert ab_stats.difference(one, ab_stats.mean(*sums([1, 2, 3]))).significant is None


def test_a_clear_difference_is_significant():
    treatment, control = ab_stats.rate(1000, 500), ab_stats.rate(1000, 300)
    diff = ab_stats.difference(treatment, control)
    se = math.hypot(math.sqrt(0.25 / 1000), math.sqrt(0.21 / 1000))
    assert diff.value == pytest.approx(0.2)
    assert (diff.low, diff.high) == pytest.approx((0.2 - 1.959964 * se, 0.2 + 1.959964 * se), abs=1e-6)
    assert diff.significant is True


def test_an_interval_that_includes_zero_is_not_yet_significant():
    diff = ab_stats.difference(ab_stats.rate(20, 11), ab_stats.rate(20, 9))
    assert diff.low < 0 < diff.high
    assert diff.significant is False


def test_compare_sets_each_arm_against_the_control():
    class Sums:
        def __init__(self, algorithm_id, sessions, impressions, impressions_squared, views, watched, skips, long_views):
            self.algorithm_id, self.sessions, self.impressions = algorithm_id, sessions, impressions
            self.impressions_squared, self.views, self.skips, self.long_views = impressions_squared, views, skips, long_views
            self.watched_ms, self.watched_ms_squared = sum(watched), sum(w * w for w in watched)

    control = Sums(1, 2, 10, 4 ** 2 + 6 ** 2, 3, [1000, 2000, 3000], 1, 0)
    other = Sums(2, 1, 5, 25, 2, [16000, 20000], 0, 2)
    arms = ab_stats.compare([control, other], control_id=1)
    assert arms[0].is_control and arms[0].figures["watch_s"].versus_control is None
    assert arms[0].figures["watch_s"].estimate.value == pytest.approx(2.0)
    assert arms[0].figures["session_length"].estimate.value == pytest.approx(5.0)
    assert arms[0].figures["skip_rate"].estimate.value == pytest.approx(1 / 3)
    assert arms[1].figures["long_view_rate"].estimate.value == 1.0
    assert arms[1].figures["watch_s"].versus_control.value == pytest.approx(16.0)
    # One session on the other arm: no interval for its session length, so no verdict.
    assert arms[1].figures["session_length"].versus_control.significant is None
