"""FirstBatch blueprint JSON: import, export, the seed algorithm, the library."""
import copy
import json

import pytest

from algorithms.blueprints import (
    LIBRARY,
    LIBRARY_DIR,
    SEED_BLUEPRINT,
    BlueprintError,
    blueprint_to_json,
    library_blueprint,
    parse_blueprint,
)
from algorithms.machine import (
    BATCH,
    DEFAULT_SIGNALS,
    HIGH_ATTN,
    LIKE,
    LOW_ATTN,
    MID_ATTN,
    NOT_INTERESTED,
    SKIP,
    Thresholds,
    step,
    validate,
)

MINIMAL = {
    "nodes": [
        {"name": "Start", "batch_type": "random", "params": {"last_n": 8}},
        {"name": "Focus", "batch_type": "personalized", "params": {"r": 0.1, "apply_threshold": [True, 0.5]}},
    ],
    "edges": [
        {"name": "edge1", "edge_type": "DEFAULT", "start": "Start", "end": "Focus"},
        {"name": "edge2", "edge_type": "DEFAULT", "start": "Focus", "end": "Focus"},
        {"name": "edge3", "edge_type": "BATCH", "start": "Start", "end": "Start"},
        {"name": "edge4", "edge_type": "BATCH", "start": "Focus", "end": "Start"},
    ],
}


def test_parse_firstbatch_blueprint():
    bp = parse_blueprint(MINIMAL)
    assert bp.initial == "Start"  # FirstBatch starts sessions in the first node
    assert [s.name for s in bp.states] == ["Start", "Focus"]
    assert bp.state("Focus").params["apply_threshold"] == [True, 0.5]
    assert bp.signals == DEFAULT_SIGNALS
    assert bp.thresholds == Thresholds()
    assert step(bp, "Start", LIKE) == "Focus"
    assert step(bp, "Focus", BATCH) == "Start"


def test_parse_accepts_a_json_string_and_lowercase_triggers():
    data = copy.deepcopy(MINIMAL)
    data["edges"][2]["edge_type"] = "batch"
    assert parse_blueprint(json.dumps(data)) == parse_blueprint(MINIMAL)


def test_listed_signals_reweight_and_extend_the_defaults():
    data = dict(MINIMAL, signals=[{"label": "LIKE", "weight": 3}, {"label": "replay", "weight": 20}])
    bp = parse_blueprint(data)
    assert bp.signal(LIKE).weight == 3
    assert bp.signal("REPLAY").weight == 20 and bp.signal("REPLAY").polarity == 1
    assert bp.signal(NOT_INTERESTED).polarity == -1  # defaults keep their polarity
    assert bp.signal_names[: len(DEFAULT_SIGNALS)] == tuple(s.name for s in DEFAULT_SIGNALS)


def test_broken_edge_is_reported_with_its_name():
    data = copy.deepcopy(MINIMAL)
    data["edges"].append({"name": "edge7", "edge_type": "LIKE", "start": "Focus", "end": "X"})
    with pytest.raises(BlueprintError) as excinfo:
        parse_blueprint(data)
    assert excinfo.value.errors == ["edge 'edge7' goes to state 'X', which the blueprint does not define"]


def test_missing_keys_are_reported():
    with pytest.raises(BlueprintError) as excinfo:
        parse_blueprint({"nodes": []})
    assert excinfo.value.errors == ["the blueprint is missing 'edges'"]

    data = copy.deepcopy(MINIMAL)
    del data["nodes"][1]["batch_type"]
    del data["edges"][0]["end"]
    with pytest.raises(BlueprintError) as excinfo:
        parse_blueprint(data)
    assert "node 'Focus' is missing 'batch_type'" in excinfo.value.errors
    assert "edge 'edge1' is missing 'end'" in excinfo.value.errors


def test_invalid_json_is_a_blueprint_error():
    with pytest.raises(BlueprintError, match="not valid JSON"):
        parse_blueprint("{nodes: [")


def test_incomplete_blueprint_is_refused_unless_asked_for():
    data = copy.deepcopy(MINIMAL)
    data["edges"] = [e for e in data["edges"] if e["name"] != "edge4"]
    with pytest.raises(BlueprintError) as excinfo:
        parse_blueprint(data)
    assert excinfo.value.errors == ["state 'Focus' has no BATCH edge"]
    assert validate(parse_blueprint(data, validate=False)) == ["state 'Focus' has no BATCH edge"]


def test_unknown_param_is_refused():
    data = copy.deepcopy(MINIMAL)
    data["nodes"][0]["params"]["temperature"] = 0.3
    with pytest.raises(BlueprintError, match="state 'Start': unknown param 'temperature'"):
        parse_blueprint(data)


def test_roundtrip():
    data = dict(copy.deepcopy(MINIMAL), signals=[{"label": "REPLAY", "weight": 20}])
    data["tokfeed"] = {"thresholds": {"high_ms": 8000, "mid_ms": 5000, "low_ms": 2000}, "polarity": {"REPLAY": 1}}
    bp = parse_blueprint(data)
    assert bp.thresholds == Thresholds(8000, 5000, 2000)
    exported = blueprint_to_json(bp)
    assert parse_blueprint(exported) == bp
    assert parse_blueprint(json.loads(json.dumps(exported))) == bp


def test_roundtrip_with_watch_ratio_thresholds():
    data = copy.deepcopy(MINIMAL)
    data["tokfeed"] = {"thresholds": {"high_ms": 8000, "mid_ms": 5000, "low_ms": 2000,
                                      "high_ratio": 0.8, "mid_ratio": 0.5, "low_ratio": 0.3}}
    bp = parse_blueprint(data)
    assert bp.thresholds == Thresholds(8000, 5000, 2000, 0.8, 0.5, 0.3)
    exported = blueprint_to_json(bp)
    assert exported["tokfeed"]["thresholds"] == data["tokfeed"]["thresholds"]
    assert parse_blueprint(json.loads(json.dumps(exported))) == bp


def test_absent_or_null_ratios_mean_absolute_thresholds_only():
    data = copy.deepcopy(MINIMAL)
    data["tokfeed"] = {"thresholds": {"high_ms": 8000, "mid_ms": 5000, "low_ms": 2000,
                                      "high_ratio": None, "mid_ratio": None, "low_ratio": None}}
    bp = parse_blueprint(data)
    assert bp.thresholds == Thresholds(8000, 5000, 2000) and not bp.thresholds.relative
    # Exported as before ratios existed.
    assert blueprint_to_json(bp)["tokfeed"]["thresholds"] == {"high_ms": 8000, "mid_ms": 5000, "low_ms": 2000}


def test_invalid_ratios_are_refused_naming_the_field():
    data = copy.deepcopy(MINIMAL)
    data["tokfeed"] = {"thresholds": {"mid_ratio": 0.5}}
    with pytest.raises(BlueprintError) as excinfo:
        parse_blueprint(data)
    assert excinfo.value.errors == [
        "watch-ratio threshold mid_ratio is set but high_ratio and low_ratio are not: "
        "set all three watch-ratio thresholds or none"
    ]
    data["tokfeed"] = {"thresholds": {"high_ratio": "0.8", "mid_ratio": 0.5, "low_ratio": 0.3, "max_ratio": 2}}
    with pytest.raises(BlueprintError) as excinfo:
        parse_blueprint(data)
    assert excinfo.value.errors == [
        "unknown threshold max_ratio (expected high_ms, mid_ms, low_ms, high_ratio, mid_ratio, low_ratio)"
    ]
    del data["tokfeed"]["thresholds"]["max_ratio"]
    with pytest.raises(BlueprintError, match=r"threshold high_ratio='0.8' must be a number"):
        parse_blueprint(data)


def test_export_is_firstbatch_shaped():
    exported = blueprint_to_json(parse_blueprint(MINIMAL))
    assert set(exported) == {"nodes", "edges", "signals", "tokfeed"}
    assert all(set(n) == {"name", "batch_type", "params"} for n in exported["nodes"])
    assert all(set(e) == {"name", "edge_type", "start", "end"} for e in exported["edges"])
    # FirstBatch builds SignalType(**signal): only label and weight may appear.
    assert all(set(s) == {"label", "weight"} for s in exported["signals"])
    assert [e["name"] for e in exported["edges"]] == ["edge1", "edge2", "edge3", "edge4"]


def test_export_lists_the_initial_state_first():
    bp = parse_blueprint(dict(MINIMAL, tokfeed={"initial": "Focus"}))
    exported = blueprint_to_json(bp)
    assert exported["nodes"][0]["name"] == "Focus"
    assert parse_blueprint(exported).initial == "Focus"


# --- the seed algorithm ----------------------------------------------------------

def test_seed_blueprint_validates():
    bp = parse_blueprint(SEED_BLUEPRINT)
    assert validate(bp) == []
    assert [s.name for s in bp.states] == ["0", "H", "M", "L", "L-R"]
    assert bp.initial == "0"
    assert bp.state("0").batch_type == "random"
    assert bp.state("H").params["last_n"] == 3


def test_seed_attention_signals_jump_to_their_state():
    bp = parse_blueprint(SEED_BLUEPRINT)
    for state in ("0", "H", "M", "L", "L-R"):
        assert step(bp, state, HIGH_ATTN) == "H"
        assert step(bp, state, MID_ATTN) == "M"
        assert step(bp, state, LOW_ATTN) == "L"
        assert step(bp, state, LIKE) == "H"
        assert step(bp, state, SKIP) == state


def test_seed_batches_without_signals_drift_toward_l_r():
    bp = parse_blueprint(SEED_BLUEPRINT)
    path, state = [], "H"
    for _ in range(4):
        state = step(bp, state, BATCH)
        path.append(state)
    assert path == ["M", "L", "L-R", "L-R"]
    assert step(bp, "0", BATCH) == "L"


def test_seed_states_get_more_exploratory_down_the_ladder():
    bp = parse_blueprint(SEED_BLUEPRINT)
    ladder = [bp.state(name).params for name in ("H", "M", "L", "L-R")]
    for key in ("r", "mu", "last_n"):
        values = [params[key] for params in ladder]
        assert values == sorted(values) and values[0] < values[-1], key


def test_seed_roundtrips():
    bp = parse_blueprint(SEED_BLUEPRINT)
    assert parse_blueprint(blueprint_to_json(bp)) == bp
    assert blueprint_to_json(bp) == SEED_BLUEPRINT


def test_seed_blueprint_is_the_shipped_one_with_absolute_thresholds_only():
    shipped = json.loads((LIBRARY_DIR / "seed_default.json").read_text())
    assert SEED_BLUEPRINT == shipped
    assert shipped["tokfeed"]["thresholds"] == {"high_ms": 15000, "mid_ms": 12000, "low_ms": 9000}
    assert parse_blueprint(shipped).thresholds == Thresholds()


# --- FirstBatch's published library ----------------------------------------------------

@pytest.mark.parametrize("key", sorted(set(LIBRARY) - {"user_intent_ai_agents"}))
def test_library_blueprints_import(key):
    bp = parse_blueprint(library_blueprint(key))
    assert validate(bp) == []
    assert bp.initial == library_blueprint(key)["nodes"][0]["name"]


def test_user_intent_ai_agents_points_at_an_undefined_state():
    with pytest.raises(BlueprintError) as excinfo:
        parse_blueprint(library_blueprint("user_intent_ai_agents"))
    assert excinfo.value.errors[0] == "edge 'edge1' goes to state 'Hyper_Focus', which the blueprint does not define"
    assert all("Hyper_Focus" in error for error in excinfo.value.errors)
