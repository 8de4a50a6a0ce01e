"""The state machine: transitions, validation messages, watch-time signals."""
import dataclasses

import pytest

from algorithms.machine import (
    BATCH,
    DEFAULT,
    DEFAULT_SIGNALS,
    HIGH_ATTN,
    LIKE,
    LOW_ATTN,
    MID_ATTN,
    NOT_INTERESTED,
    SHARE,
    SKIP,
    Blueprint,
    EdgeSpec,
    SignalSpec,
    StateSpec,
    Thresholds,
    step,
    validate,
    validate_thresholds,
    watch_time_to_signal,
)

SIGNALS = (SignalSpec(LIKE, 8, 1), SignalSpec(SHARE, 10, 1), SignalSpec(SKIP, 0, 0))


def make(states=None, edges=None, signals=SIGNALS, initial="A", thresholds=Thresholds()):
    states = states if states is not None else (
        StateSpec("A", "random", {}),
        StateSpec("B", "personalized", {"last_n": 3, "r": 0.1}),
    )
    edges = edges if edges is not None else (
        EdgeSpec("A", "B", LIKE),
        EdgeSpec("A", "A", DEFAULT),
        EdgeSpec("A", "B", BATCH),
        EdgeSpec("B", "A", DEFAULT),
        EdgeSpec("B", "B", BATCH),
    )
    return Blueprint(states, edges, signals, initial, thresholds)


# --- step -------------------------------------------------------------------

def test_step_follows_the_signal_edge():
    assert step(make(), "A", LIKE) == "B"


def test_step_falls_back_to_default_edge():
    bp = make()
    assert step(bp, "A", SHARE) == "A"
    assert step(bp, "B", LIKE) == "A"


def test_step_follows_batch_edge():
    bp = make()
    assert step(bp, "A", BATCH) == "B"
    assert step(bp, "B", BATCH) == "B"


def test_batch_does_not_take_the_default_edge():
    # Only an unvalidated blueprint can lack a BATCH edge; then the session stays.
    bp = make(edges=(EdgeSpec("A", "B", DEFAULT),))
    assert step(bp, "A", BATCH) == "A"
    assert step(bp, "A", LIKE) == "B"


def test_step_stays_without_any_matching_edge():
    bp = make(edges=(EdgeSpec("A", "B", BATCH),))
    assert step(bp, "A", LIKE) == "A"


def test_step_from_an_undefined_state_raises():
    with pytest.raises(ValueError, match="'gone'"):
        step(make(), "gone", LIKE)


# --- validate ---------------------------------------------------------------

def test_valid_blueprint_has_no_errors():
    assert validate(make()) == []


def test_missing_batch_edge_names_the_state():
    bp = make(edges=(
        EdgeSpec("A", "A", DEFAULT), EdgeSpec("A", "B", BATCH), EdgeSpec("B", "A", DEFAULT),
    ))
    assert validate(bp) == ["state 'B' has no BATCH edge"]


def test_missing_default_edge_names_the_uncovered_signals():
    bp = make(edges=(
        EdgeSpec("A", "A", DEFAULT), EdgeSpec("A", "B", BATCH),
        EdgeSpec("B", "A", LIKE), EdgeSpec("B", "B", BATCH),
    ))
    assert validate(bp) == ["state 'B' has no DEFAULT edge and no edge for signal types SHARE, SKIP"]


def test_an_edge_per_signal_type_replaces_the_default_edge():
    edges = [EdgeSpec("A", "A", DEFAULT), EdgeSpec("A", "B", BATCH), EdgeSpec("B", "B", BATCH)]
    edges += [EdgeSpec("B", "A", s.name) for s in SIGNALS]
    assert validate(make(edges=tuple(edges))) == []


def test_edge_to_an_undefined_state_is_reported():
    bp = make(edges=make().edges + (EdgeSpec("B", "foo", LIKE),))
    assert validate(bp) == ["edge B --LIKE--> foo: target state 'foo' is not defined"]


def test_edge_from_an_undefined_state_and_unknown_trigger_are_reported():
    bp = make(edges=make().edges + (EdgeSpec("ghost", "A", "WINK"),))
    errors = validate(bp)
    assert "edge ghost --WINK--> A: source state 'ghost' is not defined" in errors
    assert "edge ghost --WINK--> A: trigger 'WINK' is not a signal type, BATCH or DEFAULT" in errors


def test_unknown_batch_type_is_reported():
    bp = make(states=(StateSpec("A", "random"), StateSpec("B", "trending")))
    assert validate(bp) == [
        "state 'B': unknown batch type 'trending' (expected one of random, sampled, personalized, biased)"
    ]


def test_undefined_initial_state_is_reported():
    assert validate(make(initial="Z")) == ["initial state 'Z' is not defined"]


def test_duplicate_state_is_reported_once():
    bp = make(states=(StateSpec("A", "random"), StateSpec("B", "random"), StateSpec("B", "sampled")))
    assert validate(bp) == ["state 'B' is defined 2 times"]


def test_two_edges_for_one_trigger_are_ambiguous():
    bp = make(edges=make().edges + (EdgeSpec("A", "A", LIKE),))
    assert validate(bp) == ["state 'A' has 2 LIKE edges (ambiguous): to 'B', 'A'"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"r": 1.5}, "param r=1.5 must be a number between 0 and 1"),
        ({"mu": -0.1}, "param mu=-0.1 must be a number between 0 and 1"),
        ({"alpha": "high"}, "param alpha='high' must be a number between 0 and 1"),
        ({"apply_threshold": 2}, "param apply_threshold=2 must be a number between 0 and 1"),
        ({"mmr_lambda": 1.01}, "param mmr_lambda=1.01 must be a number between 0 and 1"),
        ({"last_n": 0}, "param last_n=0 must be a positive whole number"),
        ({"n_topics": 2.5}, "param n_topics=2.5 must be a positive whole number"),
        ({"apply_mmr": "yes"}, "param apply_mmr='yes' must be true or false"),
    ],
)
def test_invalid_params_name_the_state_and_param(params, message):
    bp = make(states=(StateSpec("A", "random"), StateSpec("B", "personalized", params)))
    assert validate(bp) == [f"state 'B': {message}"]


def test_unknown_param_is_an_error():
    bp = make(states=(StateSpec("A", "random"), StateSpec("B", "personalized", {"lastn": 3})))
    [error] = validate(bp)
    assert error.startswith("state 'B': unknown param 'lastn'")


def test_bad_signal_types_are_reported():
    bp = make(signals=SIGNALS + (SignalSpec(LIKE, 1, 1), SignalSpec("MEH", -2, 5)))
    errors = validate(bp)
    assert "signal type 'LIKE' is defined 2 times" in errors
    assert "signal type 'MEH': polarity must be 1, 0 or -1 (got 5)" in errors
    assert "signal type 'MEH': weight must be a number >= 0 (got -2)" in errors


def test_thresholds_must_decrease():
    assert validate_thresholds(Thresholds()) == []
    assert validate_thresholds(Thresholds(high_ms=12000, mid_ms=12000, low_ms=9000)) != []
    assert validate_thresholds(Thresholds(high_ms=3, mid_ms=2, low_ms=0)) != []
    assert validate_thresholds(Thresholds(high_ms=15000.5)) == [
        "threshold high_ms=15000.5 must be a whole number of milliseconds"
    ]
    assert validate(make(thresholds=Thresholds(9000, 12000, 15000))) == [
        "watch-time thresholds must satisfy high > mid > low > 0 (got high=9000, mid=12000, low=15000)"
    ]


def test_blueprint_is_immutable():
    bp = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        bp.initial = "B"
    with pytest.raises(TypeError):
        bp.states[1].params["r"] = 0.9


# --- signals from watch time --------------------------------------------------

@pytest.mark.parametrize(
    "watched_ms, signal",
    [
        (60000, HIGH_ATTN),
        (15000, HIGH_ATTN),
        (14999, MID_ATTN),
        (12000, MID_ATTN),
        (11999, LOW_ATTN),
        (9000, LOW_ATTN),
        (8999, SKIP),
        (0, SKIP),
    ],
)
def test_watch_time_boundaries(watched_ms, signal):
    assert watch_time_to_signal(watched_ms, Thresholds()) == signal


def test_watch_time_uses_the_algorithms_thresholds():
    short = Thresholds(high_ms=3000, mid_ms=2000, low_ms=1000)
    assert watch_time_to_signal(3000, short) == HIGH_ATTN
    assert watch_time_to_signal(1500, short) == LOW_ATTN


def test_negative_watch_time_is_rejected():
    with pytest.raises(ValueError):
        watch_time_to_signal(-1, Thresholds())


RATIOS = Thresholds(high_ratio=0.8, mid_ratio=0.5, low_ratio=0.3)


def test_a_short_video_watched_almost_to_the_end_is_high_attention_with_ratios():
    assert watch_time_to_signal(6000, RATIOS, duration_ms=7000) == HIGH_ATTN
    # The absolute 15/12/9 s thresholds alone call it a skip.
    assert watch_time_to_signal(6000, Thresholds(), duration_ms=7000) == SKIP
    assert watch_time_to_signal(6000, RATIOS) == SKIP  # duration unknown: ms thresholds only
    assert watch_time_to_signal(6000, RATIOS, duration_ms=0) == SKIP


@pytest.mark.parametrize(
    "watched_ms, duration_ms, signal",
    [
        (8000, 10000, HIGH_ATTN),   # ratio 0.8 exactly: inclusive
        (7999, 10000, MID_ATTN),
        (5000, 10000, MID_ATTN),
        (4999, 10000, LOW_ATTN),
        (3000, 10000, LOW_ATTN),
        (2999, 10000, SKIP),
        (16000, 100000, HIGH_ATTN),  # ratio 0.16 is a skip, 16 s is high attention: the higher wins
        (12000, 100000, MID_ATTN),
        (9000, 40000, LOW_ATTN),     # both say LOW_ATTN (ratio 0.225 < 0.3, but 9 s)
        (9000, 20000, LOW_ATTN),     # ratio 0.45: LOW_ATTN both ways
        (9000, 15000, MID_ATTN),     # ratio 0.6: MID_ATTN beats the ms LOW_ATTN
        (13000, 15000, HIGH_ATTN),   # ratio 0.87 beats the ms MID_ATTN
    ],
)
def test_relative_thresholds_take_the_more_attentive_level(watched_ms, duration_ms, signal):
    assert watch_time_to_signal(watched_ms, RATIOS, duration_ms) == signal


def test_a_ratio_above_one_means_loops():
    loops = Thresholds(high_ratio=2.0, mid_ratio=1.0, low_ratio=0.5)
    assert watch_time_to_signal(8000, loops, 4000) == HIGH_ATTN
    assert watch_time_to_signal(7999, loops, 4000) == MID_ATTN


def test_ratio_thresholds_are_all_set_or_none():
    assert validate_thresholds(RATIOS) == []
    assert validate_thresholds(Thresholds(mid_ratio=0.5)) == [
        "watch-ratio threshold mid_ratio is set but high_ratio and low_ratio are not: "
        "set all three watch-ratio thresholds or none"
    ]
    assert validate_thresholds(Thresholds(mid_ratio=0.5, low_ratio=0.2)) == [
        "watch-ratio thresholds mid_ratio and low_ratio are set but high_ratio is not: "
        "set all three watch-ratio thresholds or none"
    ]


@pytest.mark.parametrize("field, value", [
    ("high_ratio", True), ("mid_ratio", "0.5"), ("low_ratio", float("nan")), ("high_ratio", float("inf")),
])
def test_ratio_thresholds_are_finite_numbers(field, value):
    thresholds = dataclasses.replace(RATIOS, **{field: value})
    assert validate_thresholds(thresholds) == [
        f"threshold {field}={value!r} must be a number (watched time / video duration)"
    ]


@pytest.mark.parametrize("high, mid, low", [
    (0.8, 0.8, 0.3), (0.5, 0.8, 0.3), (0.8, 0.5, 0.0), (0.8, 0.5, -0.1), (10.5, 0.5, 0.3),
])
def test_ratio_thresholds_must_decrease_within_bounds(high, mid, low):
    assert validate_thresholds(Thresholds(high_ratio=high, mid_ratio=mid, low_ratio=low)) == [
        "watch-ratio thresholds must satisfy 10 >= high > mid > low > 0 "
        f"(got high_ratio={high}, mid_ratio={mid}, low_ratio={low})"
    ]
    assert validate_thresholds(Thresholds(high_ratio=10, mid_ratio=1, low_ratio=0.01)) == []


def test_an_invalid_ratio_makes_the_blueprint_invalid():
    assert validate(make(thresholds=Thresholds(low_ratio=0.2))) == [
        "watch-ratio threshold low_ratio is set but high_ratio and mid_ratio are not: "
        "set all three watch-ratio thresholds or none"
    ]


def test_default_signal_polarities():
    by_name = {s.name: s for s in DEFAULT_SIGNALS}
    assert by_name[SKIP].polarity == 0
    assert by_name[NOT_INTERESTED].polarity == -1
    assert all(by_name[n].polarity == 1 for n in (HIGH_ATTN, MID_ATTN, LOW_ATTN, LIKE))
    assert by_name[HIGH_ATTN].weight > by_name[MID_ATTN].weight > by_name[LOW_ATTN].weight > 0
