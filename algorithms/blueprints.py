"""FirstBatch-compatible blueprint JSON: import, export, the seed algorithm
and FirstBatch's published library.

The format is FirstBatch's (``firstbatchxyz/firstbatch-sdk``,
``firstbatch/algorithm/blueprint``)::

    {
      "nodes":   [{"name": "0", "batch_type": "random", "params": {...}}, ...],
      "edges":   [{"name": "edge1", "edge_type": "BATCH", "start": "0", "end": "H"}, ...],
      "signals": [{"label": "LIKE", "weight": 8}, ...]            (optional)
    }

``edge_type`` is ``BATCH``, ``DEFAULT`` or a signal label. As in FirstBatch,
sessions start in the first node, listed ``signals`` add to (or re-weight)
the default signal types, and ``apply_threshold`` may be a number or
``[enabled, value]``.

tokfeed needs three things FirstBatch JSON cannot say: signal polarity, the
watch-time thresholds and (for blueprints whose initial state is not listed
first) the initial state. They travel in one extra top-level key,
``"tokfeed": {"initial": ..., "thresholds": {...}, "polarity": {...}}``, which
FirstBatch's parsers ignore, so exported blueprints still load there.
``thresholds`` holds ``high_ms``, ``mid_ms``, ``low_ms`` and, for thresholds
relative to the video's duration, ``high_ratio``, ``mid_ratio``, ``low_ratio``
(omitted or null: absolute thresholds only).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path

from .machine import (
    BATCH,
    DEFAULT,
    DEFAULT_SIGNALS,
    FOLLOW_CREATOR,
    HIGH_ATTN,
    LIKE,
    LOW_ATTN,
    MID_ATTN,
    POSITIVE,
    SHARE,
    Blueprint,
    EdgeSpec,
    SignalSpec,
    StateSpec,
    Thresholds,
    validate as validate_blueprint,
)

EXTENSION_KEY = "tokfeed"

LIBRARY_DIR = Path(__file__).with_name("blueprints")

# FirstBatch's published library (firstbatch-sdk firstbatch/algorithm/blueprint/library.py,
# identical in firstbatch-sdk-ts src/algorithm/blueprint/library.ts), stored as published.
# "User-Intent AI Agents" points its DEFAULT edges at a state it never defines
# (Hyper_Focus), so it does not import; it is kept as published all the same.
LIBRARY = {
    "navigable_ux": "Navigable UX",
    "individually_crafted_recommendations": "Individually Crafted Recommendations",
    "unique_journeys": "Unique Journeys",
    "user_centric_promoted_content_curations": "User-Centric Promoted Content Curations",
    "user_intent_ai_agents": "User-Intent AI Agents",
}


class BlueprintError(ValueError):
    """A blueprint that cannot be imported. ``errors`` lists every problem
    found, each a sentence naming the node, edge or signal at fault."""

    def __init__(self, errors):
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


def _merge_signals(listed, polarity: Mapping, defaults, errors: list[str]) -> tuple[SignalSpec, ...]:
    """Default signal types, re-weighted and extended by the listed ones."""
    merged = {s.name: s for s in defaults}
    for i, entry in enumerate(listed):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("label"), str) or "weight" not in entry:
            errors.append(f"signal {i + 1} must be an object with a 'label' and a 'weight'")
            continue
        name = entry["label"].strip().upper()
        known = merged.get(name)
        merged[name] = SignalSpec(name, entry["weight"], known.polarity if known else POSITIVE)
    for name, value in polarity.items():
        name = str(name).upper()
        if name not in merged:
            errors.append(f"polarity given for signal type '{name}', which the blueprint does not define")
        else:
            merged[name] = SignalSpec(name, merged[name].weight, value)
    return tuple(merged.values())


def _parse_thresholds(raw, errors: list[str]) -> Thresholds:
    if raw is None:
        return Thresholds()
    allowed = [f.name for f in fields(Thresholds)]
    if not isinstance(raw, Mapping):
        errors.append(f"tokfeed thresholds must be an object with {', '.join(allowed)}")
        return Thresholds()
    unknown = sorted(set(raw) - set(allowed), key=str)
    if unknown:
        errors.append(f"unknown threshold {', '.join(map(str, unknown))} (expected {', '.join(allowed)})")
    return Thresholds(**{k: v for k, v in raw.items() if k in allowed})


def parse_blueprint(data, signals_default=DEFAULT_SIGNALS, *, validate: bool = True) -> Blueprint:
    """A ``Blueprint`` from FirstBatch blueprint JSON (a dict or a JSON string).

    Raises ``BlueprintError`` listing every problem: missing keys, wrong
    types, edges that reference undefined states (``edge 'edge7' goes to
    state 'X', which the blueprint does not define``). With ``validate``
    (the default) the result must also pass ``machine.validate``; pass
    ``validate=False`` to load an incomplete blueprint for editing.
    """
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise BlueprintError(f"the blueprint is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise BlueprintError("a blueprint must be a JSON object with 'nodes' and 'edges'")

    errors: list[str] = []
    for key in ("nodes", "edges"):
        if key not in data:
            errors.append(f"the blueprint is missing '{key}'")
        elif not isinstance(data[key], list):
            errors.append(f"'{key}' must be a list")
    if errors:
        raise BlueprintError(errors)
    extension = data.get(EXTENSION_KEY) or {}
    if not isinstance(extension, Mapping):
        raise BlueprintError(f"'{EXTENSION_KEY}' must be an object")

    states: list[StateSpec] = []
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, Mapping):
            errors.append(f"node {i + 1} must be an object")
            continue
        name = node.get("name")
        if not isinstance(name, str) or not name.strip():
            errors.append(f"node {i + 1} is missing 'name' (a non-empty string)")
            continue
        if not isinstance(node.get("batch_type"), str):
            errors.append(f"node '{name}' is missing 'batch_type'")
            continue
        params = node.get("params", {})
        if not isinstance(params, Mapping):
            errors.append(f"node '{name}': 'params' must be an object")
            continue
        states.append(StateSpec(name, node["batch_type"], params))

    defined = {state.name for state in states}
    edges: list[EdgeSpec] = []
    for i, edge in enumerate(data["edges"]):
        if not isinstance(edge, Mapping):
            errors.append(f"edge {i + 1} must be an object")
            continue
        label = edge.get("name") or f"#{i + 1}"
        missing = [key for key in ("edge_type", "start", "end") if not isinstance(edge.get(key), str)]
        if missing:
            errors.append(f"edge '{label}' is missing {', '.join(repr(key) for key in missing)}")
            continue
        if edge["start"] not in defined:
            errors.append(f"edge '{label}' starts at state '{edge['start']}', which the blueprint does not define")
        if edge["end"] not in defined:
            errors.append(f"edge '{label}' goes to state '{edge['end']}', which the blueprint does not define")
        # FirstBatch upper-cases signal labels; accept "like" for LIKE.
        edges.append(EdgeSpec(edge["start"], edge["end"], edge["edge_type"].strip().upper()))

    listed_signals = data.get("signals") or []
    if not isinstance(listed_signals, list):
        errors.append("'signals' must be a list of {label, weight} objects")
        listed_signals = []
    polarity = extension.get("polarity") or {}
    if not isinstance(polarity, Mapping):
        errors.append("tokfeed polarity must be an object mapping signal types to 1, 0 or -1")
        polarity = {}
    signals = _merge_signals(listed_signals, polarity, signals_default, errors)
    thresholds = _parse_thresholds(extension.get("thresholds"), errors)
    initial = extension.get("initial", states[0].name if states else "")
    if errors:
        raise BlueprintError(errors)

    blueprint = Blueprint(tuple(states), tuple(edges), signals, initial, thresholds)
    if validate:
        problems = validate_blueprint(blueprint)
        if problems:
            raise BlueprintError(problems)
    return blueprint


def _thresholds_json(thresholds: Thresholds) -> dict:
    """The thresholds, without the ratios when there are none (so an absolute-only algorithm
    exports as it did before ratios existed)."""
    return {key: value for key, value in asdict(thresholds).items() if value is not None}


def _signals_json(signals) -> list[dict]:
    return [{"label": s.name, "weight": s.weight} for s in signals]


def blueprint_to_json(blueprint: Blueprint) -> dict:
    """FirstBatch blueprint JSON for ``blueprint`` (plus the tokfeed extension).

    The initial state is listed first, since FirstBatch starts sessions in the
    first node; edges are named ``edge1``, ``edge2``... in order.
    ``parse_blueprint(blueprint_to_json(b)) == b`` whenever ``b``'s initial
    state is its first state and its signals list the defaults first (both
    hold for anything that came from ``parse_blueprint``).
    """
    states = sorted(blueprint.states, key=lambda s: s.name != blueprint.initial)
    return {
        "nodes": [{"name": s.name, "batch_type": s.batch_type, "params": dict(s.params)} for s in states],
        "edges": [
            {"name": f"edge{i}", "edge_type": e.trigger, "start": e.start, "end": e.end}
            for i, e in enumerate(blueprint.edges, start=1)
        ],
        "signals": _signals_json(blueprint.signals),
        EXTENSION_KEY: {
            "initial": blueprint.initial,
            "thresholds": _thresholds_json(blueprint.thresholds),
            "polarity": {s.name: s.polarity for s in blueprint.signals},
        },
    }


def library_blueprint(key: str) -> dict:
    """One of FirstBatch's published library blueprints, as published (JSON
    dict). ``key`` is one of ``LIBRARY``; KeyError otherwise."""
    if key not in LIBRARY:
        raise KeyError(key)
    return json.loads((LIBRARY_DIR / f"{key}.json").read_text())


# --- the seed app's default algorithm ------------------------------------------
#
# Five states on a ladder from focused to exploratory: H -> M -> L -> L-R.
# Attention signals jump straight to their rung (HIGH_ATTN -> H, MID_ATTN -> M,
# LOW_ATTN -> L), and explicit positive actions (LIKE, SHARE, FOLLOW_CREATOR)
# count as high attention. Every other signal (SKIP, NOT_INTERESTED, any type
# an operator adds) takes the DEFAULT edge and keeps the state: they do not
# say "show me more of this", and NOT_INTERESTED already pushes the user
# vector away. After each batch the caller fires BATCH, which moves one rung
# toward L-R, so a batch served with no signal since the previous one lands a
# step more exploratory, while any attention signal resets the rung.
#
# "0" is where sessions start (random: nothing is known yet). A first batch
# that earned no attention signal goes to L, one rung before L-R: the viewer
# skipped a random sample, so keep exploring widely.
#
# No state sets apply_threshold: useful cosine floors depend on the embedding
# model, and a floor that is too strict only turns personalised slots into
# random fill. Operators can tune it per state in the admin.

_SEED_NODES = [
    {"name": "0", "batch_type": "random", "params": {}},
    {"name": "H", "batch_type": "personalized",
     "params": {"last_n": 3, "r": 0.0, "mu": 0.05, "alpha": 0.0, "apply_mmr": False}},
    {"name": "M", "batch_type": "personalized",
     "params": {"last_n": 5, "r": 0.1, "mu": 0.15, "alpha": 0.3, "apply_mmr": True, "mmr_lambda": 0.7}},
    {"name": "L", "batch_type": "personalized",
     "params": {"last_n": 8, "r": 0.3, "mu": 0.3, "alpha": 0.6, "apply_mmr": True, "mmr_lambda": 0.5}},
    {"name": "L-R", "batch_type": "personalized",
     "params": {"last_n": 12, "r": 0.5, "mu": 0.5, "alpha": 1.0, "apply_mmr": True, "mmr_lambda": 0.5}},
]

_SEED_JUMPS = {HIGH_ATTN: "H", MID_ATTN: "M", LOW_ATTN: "L", LIKE: "H", SHARE: "H", FOLLOW_CREATOR: "H"}
_SEED_LADDER = {"0": "L", "H": "M", "M": "L", "L": "L-R", "L-R": "L-R"}


def _seed_edges() -> list[dict]:
    edges = []
    for node in _SEED_NODES:
        state = node["name"]
        triggers = list(_SEED_JUMPS.items())
        triggers += [(DEFAULT, state), (BATCH, _SEED_LADDER[state])]
        for trigger, target in triggers:
            edges.append({"name": f"edge{len(edges) + 1}", "edge_type": trigger, "start": state, "end": target})
    return edges


SEED_BLUEPRINT: dict = {
    "nodes": _SEED_NODES,
    "edges": _seed_edges(),
    "signals": _signals_json(DEFAULT_SIGNALS),
    EXTENSION_KEY: {
        "initial": "0",
        "thresholds": _thresholds_json(Thresholds()),
        "polarity": {s.name: s.polarity for s in DEFAULT_SIGNALS},
    },
}
