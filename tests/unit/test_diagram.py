"""The machine's picture is Mermaid source built from the blueprint alone."""
from algorithms.blueprints import SEED_BLUEPRINT, parse_blueprint
from algorithms.diagram import mermaid_source
from algorithms.machine import Blueprint, EdgeSpec, SignalSpec, StateSpec


def test_the_seed_machine_draws_its_states_params_triggers_and_initial_state():
    source = mermaid_source(parse_blueprint(SEED_BLUEPRINT))
    lines = source.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    s0["<b>0</b><br/>random"]:::initial' in lines
    assert "    start --> s0" in lines
    # H's params that shape a personalized batch, three a line
    assert '    s1["<b>H</b><br/>personalized<br/>last_n\u00a03 · r\u00a00 · mu\u00a00.05<br/>alpha\u00a00 · apply_mmr\u00a0off"]' in lines
    # edges between two states are drawn once, with every trigger (signals, DEFAULT, BATCH in order)
    assert '    s1 -->|"HIGH_ATTN, LIKE, SHARE, FOLLOW_CREATOR, DEFAULT"| s1' in lines
    assert '    s3 -.->|"BATCH"| s4' in lines
    assert sum(" -->|" in line or " -.->|" in line for line in lines) == 18


def test_names_are_escaped_and_params_that_do_not_shape_the_batch_type_are_left_out():
    blueprint = Blueprint(
        states=[StateSpec('a "quoted" <b>#1</b>', "random", {"mu": 0.5, "popularity_weighted": True}),
                StateSpec("B|2", "sampled", {"n_topics": 3})],
        edges=[EdgeSpec('a "quoted" <b>#1</b>', "B|2", "BATCH"), EdgeSpec("B|2", "B|2", "DEFAULT"),
               EdgeSpec("B|2", "Gone", "BATCH")],
        signals=[SignalSpec("LIKE", 8.0)],
        initial='a "quoted" <b>#1</b>',
    )
    lines = mermaid_source(blueprint).splitlines()
    assert '    s0["<b>a #quot;quoted#quot; #lt;b#gt;#35;1#lt;/b#gt;</b><br/>random<br/>popularity_weighted\u00a0on"]:::initial' in lines
    assert '    s1["<b>B#124;2</b><br/>sampled<br/>n_topics\u00a03"]' in lines
    # an edge to an undefined state still draws, to a node that says so
    assert '    u0["Gone<br/>(not defined)"]:::undefined' in lines
    assert '    s1 -.->|"BATCH"| u0' in lines


def test_a_blueprint_whose_initial_state_is_missing_draws_no_start_marker():
    blueprint = Blueprint(states=[StateSpec("A", "random")], edges=[], signals=[], initial="Z")
    assert "start" not in mermaid_source(blueprint).split("classDef")[0]
