"""The picture of a state machine: Mermaid flowchart source for a ``machine.Blueprint``.

Plain text from plain data (no database): each state is a node labelled with its name, batch
type and the params it sets (those that shape its batch type, in ``PARAMS`` order); edges between the same two
states are drawn once, labelled with all their triggers; the initial state is pointed at by a
start marker and drawn with a thicker border. Every name from the blueprint is escaped, so any
state or signal name draws as written. The admin renders it with the vendored Mermaid.
"""
from __future__ import annotations

from .machine import BATCH, DEFAULT, Blueprint
from .ranking.params import PARAMS

#: Params per line in a node's label.
PARAMS_PER_LINE = 3


def _escape(text: str) -> str:
    """Text for a quoted Mermaid label: Mermaid's entity codes for what would end or mark up
    the label (``#`` first, since the codes themselves use it)."""
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("|", "#124;")):
        text = text.replace(char, code)
    return text


def _value(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):  # FirstBatch's [enabled, threshold]
        return f"{value[1]:g}" if value and value[0] else "off"
    return str(value)


def _node_label(state) -> str:
    shown = [  # in the declared order (the stored JSON's key order is the database's)
        f"{spec.name}\u00a0{_value(state.params[spec.name])}" for spec in PARAMS  # wrapped between params only
        if spec.name in state.params and state.batch_type in spec.batch_types
    ]
    lines = [f"<b>{_escape(state.name)}</b>", _escape(state.batch_type)]
    lines += [_escape(" · ".join(shown[i:i + PARAMS_PER_LINE])) for i in range(0, len(shown), PARAMS_PER_LINE)]
    return "<br/>".join(lines)


def _trigger_order(blueprint: Blueprint):
    """Signal types as the blueprint lists them, then DEFAULT, then BATCH (the order labels list
    their triggers in)."""
    order = {name: i for i, name in enumerate(blueprint.signal_names)}
    order.setdefault(DEFAULT, len(order))
    order.setdefault(BATCH, len(order))
    return lambda trigger: (order.get(trigger, len(order)), trigger)


def mermaid_source(blueprint: Blueprint) -> str:
    """Mermaid flowchart source drawing ``blueprint``'s states and transitions."""
    ids = {state.name: f"s{i}" for i, state in enumerate(blueprint.states)}
    lines = ["flowchart LR"]
    if blueprint.initial in ids:
        lines.append('    start((" ")):::start')
    for state in blueprint.states:
        css_class = ":::initial" if state.name == blueprint.initial else ""
        lines.append(f'    {ids[state.name]}["{_node_label(state)}"]{css_class}')
    if blueprint.initial in ids:
        lines.append(f"    start --> {ids[blueprint.initial]}")

    grouped: dict[tuple[str, str], list[str]] = {}
    undefined: list[str] = []
    for edge in blueprint.edges:
        for name in (edge.start, edge.end):
            if name not in ids and name not in undefined:
                undefined.append(name)  # an invalid blueprint still draws: the dangling end shows
        grouped.setdefault((edge.start, edge.end), []).append(edge.trigger)
    for i, name in enumerate(undefined):
        ids[name] = f"u{i}"
        lines.append(f'    u{i}["{_escape(name)}<br/>(not defined)"]:::undefined')
    key = _trigger_order(blueprint)
    for (start, end), triggers in grouped.items():
        label = _escape(", ".join(sorted(triggers, key=key)))
        arrow = "-.->" if triggers == [BATCH] else "-->"  # a batch served moves along a dotted line
        lines.append(f'    {ids[start]} {arrow}|"{label}"| {ids[end]}')

    lines += [
        "    classDef initial stroke-width:3px",
        "    classDef start fill:#333,stroke:#333",
        "    classDef undefined stroke-dasharray:4 3,fill:#fee",
    ]
    return "\n".join(lines) + "\n"
