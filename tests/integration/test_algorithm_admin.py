"""The algorithm dashboard refuses invalid machines and applies valid edits."""
import json

import pytest
from django.core.management import CommandError, call_command

from algorithms.models import Algorithm, Edge, State


def change_form_data(algorithm: Algorithm) -> dict:
    """What the admin's change form posts for ``algorithm`` as it is stored."""
    data = {
        "name": algorithm.name, "slug": algorithm.slug, "description": algorithm.description,
        "is_default": "on" if algorithm.is_default else "", "initial_state": algorithm.initial_state,
        "batch_size": algorithm.batch_size, "high_attention_ms": algorithm.high_attention_ms,
        "mid_attention_ms": algorithm.mid_attention_ms, "low_attention_ms": algorithm.low_attention_ms,
    }
    inlines = {
        "states": (algorithm.states.all(), ["name", "batch_type", "params"]),
        "signal_types": (algorithm.signal_types.all(), ["name", "weight", "polarity"]),
        "edges": (algorithm.edges.all(), ["name", "start", "trigger", "end"]),
    }
    for prefix, (rows, fields) in inlines.items():
        rows = list(rows)
        data.update({f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": len(rows),
                     f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000})
        for i, row in enumerate(rows):
            data[f"{prefix}-{i}-id"] = row.pk
            data[f"{prefix}-{i}-algorithm"] = algorithm.pk
            for field in fields:
                value = getattr(row, field)
                data[f"{prefix}-{i}-{field}"] = json.dumps(value) if field == "params" else value
    return data


def row_index(data: dict, prefix: str, **match) -> int:
    i = 0
    while f"{prefix}-{i}-id" in data:
        if all(str(data[f"{prefix}-{i}-{k}"]) == v for k, v in match.items()):
            return i
        i += 1
    raise LookupError(match)


def test_removing_a_batch_edge_is_refused_naming_the_state(admin_client):
    algorithm = Algorithm.objects.get(slug="seed-default")
    data = change_form_data(algorithm)
    i = row_index(data, "edges", start="H", trigger="BATCH")
    data[f"edges-{i}-DELETE"] = "on"

    response = admin_client.post(f"/admin/algorithms/algorithm/{algorithm.pk}/change/", data)

    assert response.status_code == 200  # the form again, not a redirect
    assert "This algorithm cannot run" in response.content.decode()
    assert "state &#x27;H&#x27; has no BATCH edge" in response.content.decode()
    assert Edge.objects.filter(algorithm=algorithm, start="H", trigger="BATCH").exists()


def test_an_edge_to_an_undefined_state_is_refused(admin_client):
    algorithm = Algorithm.objects.get(slug="seed-default")
    data = change_form_data(algorithm)
    i = row_index(data, "edges", start="M", trigger="LIKE")
    data[f"edges-{i}-end"] = "Nowhere"

    response = admin_client.post(f"/admin/algorithms/algorithm/{algorithm.pk}/change/", data)

    assert response.status_code == 200
    assert "Nowhere" in response.content.decode()
    assert Edge.objects.get(algorithm=algorithm, start="M", trigger="LIKE").end == "H"


def test_out_of_range_params_and_thresholds_are_refused(admin_client):
    algorithm = Algorithm.objects.get(slug="seed-default")
    data = change_form_data(algorithm)
    data[f"states-{row_index(data, 'states', name='H')}-params"] = json.dumps({"r": 1.5})
    data["mid_attention_ms"] = 20000
    response = admin_client.post(f"/admin/algorithms/algorithm/{algorithm.pk}/change/", data)
    body = response.content.decode()
    assert response.status_code == 200
    assert "r=1.5" in body and "high &gt; mid &gt; low" in body
    assert State.objects.get(algorithm=algorithm, name="H").params["r"] == 0.0


def test_a_mid_ratio_without_a_high_ratio_is_refused(admin_client):
    algorithm = Algorithm.objects.get(slug="seed-default")
    data = change_form_data(algorithm)
    data.update(mid_attention_ratio="0.5", low_attention_ratio="0.3")
    response = admin_client.post(f"/admin/algorithms/algorithm/{algorithm.pk}/change/", data)
    body = response.content.decode()
    assert response.status_code == 200
    assert "watch-ratio thresholds mid_ratio and low_ratio are set but high_ratio is not" in body
    algorithm.refresh_from_db()
    assert (algorithm.mid_attention_ratio, algorithm.low_attention_ratio) == (None, None)


def test_ratios_out_of_order_are_refused_and_valid_ones_save(admin_client):
    algorithm = Algorithm.objects.get(slug="seed-default")
    data = change_form_data(algorithm)
    data.update(high_attention_ratio="0.5", mid_attention_ratio="0.8", low_attention_ratio="0.3")
    response = admin_client.post(f"/admin/algorithms/algorithm/{algorithm.pk}/change/", data)
    assert response.status_code == 200
    assert "watch-ratio thresholds must satisfy 10 &gt;= high &gt; mid &gt; low &gt; 0" in response.content.decode()

    data.update(high_attention_ratio="0.8", mid_attention_ratio="0.5")
    response = admin_client.post(f"/admin/algorithms/algorithm/{algorithm.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    algorithm.refresh_from_db()
    assert algorithm.thresholds.relative
    assert (algorithm.high_attention_ratio, algorithm.mid_attention_ratio, algorithm.low_attention_ratio) == (0.8, 0.5, 0.3)


def test_the_change_form_shows_the_ratios_next_to_the_ms_thresholds(admin_client):
    algorithm = Algorithm.objects.get(slug="seed-default")
    body = admin_client.get(f"/admin/algorithms/algorithm/{algorithm.pk}/change/").content.decode()
    for level in ("high", "mid", "low"):
        assert f'name="{level}_attention_ms"' in body and f'name="{level}_attention_ratio"' in body


def test_a_valid_edit_with_a_new_state_saves(admin_client):
    algorithm = Algorithm.objects.get(slug="seed-default")
    data = change_form_data(algorithm)
    n = data["states-TOTAL_FORMS"]
    data.update({"states-TOTAL_FORMS": n + 1, f"states-{n}-name": "Deep", f"states-{n}-batch_type": "sampled",
                 f"states-{n}-params": json.dumps({"n_topics": 3}), f"states-{n}-algorithm": algorithm.pk})
    m = data["edges-TOTAL_FORMS"]
    data.update({"edges-TOTAL_FORMS": m + 2})
    for j, (trigger, end) in enumerate([("BATCH", "L-R"), ("DEFAULT", "Deep")]):
        data.update({f"edges-{m + j}-start": "Deep", f"edges-{m + j}-trigger": trigger, f"edges-{m + j}-end": end,
                     f"edges-{m + j}-name": "", f"edges-{m + j}-algorithm": algorithm.pk})
    data[f"edges-{row_index(data, 'edges', start='L-R', trigger='BATCH')}-end"] = "Deep"

    response = admin_client.post(f"/admin/algorithms/algorithm/{algorithm.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert Edge.objects.get(algorithm=algorithm, start="L-R", trigger="BATCH").end == "Deep"


def test_blueprint_commands_round_trip_and_explain_a_broken_blueprint(db, tmp_path, capsys):
    call_command("export_algorithm", "navigable-ux")
    exported = capsys.readouterr().out
    path = tmp_path / "copy.json"
    path.write_text(exported)
    call_command("import_algorithm", str(path), "--slug", "navigable-copy")
    assert "6 states, 12 edges" in capsys.readouterr().out
    call_command("export_algorithm", "navigable-copy")
    assert json.loads(capsys.readouterr().out) == json.loads(exported)

    with pytest.raises(CommandError, match="edge 'edge1' goes to state 'Hyper_Focus', which the blueprint does not define"):
        call_command("import_algorithm", "algorithms/blueprints/user_intent_ai_agents.json")
    assert not Algorithm.objects.filter(slug="user-intent-ai-agents-copy").exists()
    assert Algorithm.objects.get(slug="user-intent-ai-agents").edges.filter(end="Hyper_Focus").count() == 0
