"""The algorithm dashboard: params as fields, the edge grid, the machine's picture, clone /
import / export / make default, the audit history and who may change what. Real admin views
over the real database, posting what the browser would."""
import json
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from algorithms.blueprints import blueprint_to_json
from algorithms.machine import BATCH, DEFAULT
from algorithms.models import Algorithm, Edge, SignalType, State
from algorithms.ranking.params import FLAG, PARAMS
from algorithms.selectors import load_blueprint
from algorithms.services import export_blueprint


def change_url(algorithm: Algorithm) -> str:
    return f"/admin/algorithms/algorithm/{algorithm.pk}/change/"


def management(prefix: str, total: int, initial: int | None = None) -> dict:
    return {f"{prefix}-TOTAL_FORMS": total, f"{prefix}-INITIAL_FORMS": total if initial is None else initial,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}


def state_fields(prefix: str, name: str, batch_type: str, params: dict) -> dict:
    """A state's form fields as the browser posts them (params as their own fields)."""
    data = {f"{prefix}-name": name, f"{prefix}-batch_type": batch_type}
    for spec in PARAMS:
        value = spec.parse(params[spec.name]) if spec.name in params else None
        if spec.kind == FLAG:
            if (spec.default if value is None else value):
                data[f"{prefix}-param_{spec.name}"] = "on"
        elif value is not None:
            data[f"{prefix}-param_{spec.name}"] = str(value)
    return data


def change_form_data(algorithm: Algorithm) -> dict:
    """What the admin's change form posts for ``algorithm`` as it is stored."""
    data = {
        "name": algorithm.name, "slug": algorithm.slug, "description": algorithm.description,
        "is_default": "on" if algorithm.is_default else "", "initial_state": algorithm.initial_state,
        "traffic_share": algorithm.traffic_share, "batch_size": algorithm.batch_size,
    }
    for level in ("high", "mid", "low"):
        data[f"{level}_attention_ms"] = getattr(algorithm, f"{level}_attention_ms")
        ratio = getattr(algorithm, f"{level}_attention_ratio")
        data[f"{level}_attention_ratio"] = "" if ratio is None else ratio
    states, signals = list(algorithm.states.all()), list(algorithm.signal_types.all())
    data.update(management("states", len(states)))
    for i, state in enumerate(states):
        data.update({f"states-{i}-id": state.pk, f"states-{i}-algorithm": algorithm.pk})
        data.update(state_fields(f"states-{i}", state.name, state.batch_type, state.params))
    data.update(management("signal_types", len(signals)))
    for i, signal in enumerate(signals):
        data.update({f"signal_types-{i}-id": signal.pk, f"signal_types-{i}-algorithm": algorithm.pk,
                     f"signal_types-{i}-name": signal.name, f"signal_types-{i}-weight": signal.weight,
                     f"signal_types-{i}-polarity": signal.polarity})
    data.update(management("edges", 0))
    edges = {(e.start, e.trigger): e.end for e in algorithm.edges.all()}
    triggers = [s.name for s in signals] + [DEFAULT, BATCH]
    for j, trigger in enumerate(triggers):
        data[f"edges-grid-col-{j}"] = trigger
    for i, state in enumerate(states):
        data[f"edges-grid-row-{i}"] = state.name
        for j, trigger in enumerate(triggers):
            data[f"edges-grid-{i}-{j}"] = edges.get((state.name, trigger), "")
    return data


def index_of(data: dict, key: str, value: str) -> int:
    """The index ``i`` of the posted ``<key-with-{i}>`` whose value is ``value``."""
    i = 0
    while key.format(i) in data:
        if str(data[key.format(i)]) == value:
            return i
        i += 1
    raise LookupError(value)


def set_cell(data: dict, state: str, trigger: str, target: str) -> None:
    i, j = index_of(data, "edges-grid-row-{}", state), index_of(data, "edges-grid-col-{}", trigger)
    data[f"edges-grid-{i}-{j}"] = target


def state_prefix(data: dict, name: str) -> str:
    return f"states-{index_of(data, 'states-{}-name', name)}"


@pytest.fixture
def seed(db) -> Algorithm:
    return Algorithm.objects.get(slug="seed-default")


# --- the machine's validation -----------------------------------------------------------------

def test_removing_a_batch_edge_is_refused_naming_the_state(admin_client, seed):
    data = change_form_data(seed)
    set_cell(data, "H", "BATCH", "")

    response = admin_client.post(change_url(seed), data)

    assert response.status_code == 200  # the form again, not a redirect
    body = response.content.decode()
    assert "This algorithm cannot run" in body
    assert "state &#x27;H&#x27; has no BATCH edge" in body
    assert Edge.objects.filter(algorithm=seed, start="H", trigger="BATCH").exists()


def test_a_state_with_neither_default_nor_every_signal_is_refused_naming_what_it_lacks(admin_client, seed):
    data = change_form_data(seed)
    set_cell(data, "M", "DEFAULT", "")
    response = admin_client.post(change_url(seed), data)
    assert "state &#x27;M&#x27; has no DEFAULT edge and no edge for signal types SKIP, NOT_INTERESTED" in response.content.decode()
    assert Edge.objects.filter(algorithm=seed, start="M", trigger="DEFAULT").exists()


def test_an_edge_to_an_undefined_state_is_refused_and_shown_as_posted(admin_client, seed):
    data = change_form_data(seed)
    set_cell(data, "M", "LIKE", "Nowhere")

    response = admin_client.post(change_url(seed), data)

    body = response.content.decode()
    assert response.status_code == 200
    assert "target state &#x27;Nowhere&#x27; is not defined" in body
    assert '<option value="Nowhere" selected>Nowhere (not defined)</option>' in body  # nothing typed is lost
    assert Edge.objects.get(algorithm=seed, start="M", trigger="LIKE").end == "H"


# --- params as fields -------------------------------------------------------------------------

def test_the_params_form_rejects_an_out_of_range_value_naming_the_param(admin_client, seed):
    data = change_form_data(seed)
    prefix = state_prefix(data, "H")
    data[f"{prefix}-param_r"] = "1.5"
    data[f"{prefix}-param_last_n"] = "0"
    data["mid_attention_ms"] = 20000
    response = admin_client.post(change_url(seed), data)
    body = response.content.decode()
    assert response.status_code == 200
    assert "param r=1.5 must be a number between 0 and 1" in body
    assert "param last_n=0 must be a positive whole number" in body
    assert "high &gt; mid &gt; low" in body
    assert State.objects.get(algorithm=seed, name="H").params["r"] == 0.0


def test_params_render_as_number_inputs_with_their_range_and_checkboxes(admin_client, seed):
    body = admin_client.get(change_url(seed)).content.decode()
    prefix = "states-1"  # H
    assert State.objects.filter(algorithm=seed).order_by("id")[1].name == "H"
    assert (f'<input type="number" name="{prefix}-param_r" value="0.0" data-batch-types="sampled personalized biased" '
            'class="state-param" step="0.01" placeholder="0" min="0" max="1"') in body
    assert f'<input type="checkbox" name="{prefix}-param_apply_mmr" data-batch-types="personalized biased"' in body
    assert "Share of the batch filled with random unseen videos" in body  # what the param does
    assert 'name="states-0-params"' not in body  # no JSON box


def test_a_param_edit_writes_only_that_param_to_the_json(admin_client, seed):
    data = change_form_data(seed)
    before = dict(State.objects.get(algorithm=seed, name="M").params)
    prefix = state_prefix(data, "M")
    data[f"{prefix}-param_r"] = "0.25"
    data[f"{prefix}-param_score_last_n"] = "10"
    del data[f"{prefix}-param_apply_mmr"]  # unticked

    response = admin_client.post(change_url(seed), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    after = State.objects.get(algorithm=seed, name="M").params
    assert after == {**before, "r": 0.25, "score_last_n": 10, "apply_mmr": False}
    assert isinstance(after["score_last_n"], int)


# --- the edge grid ----------------------------------------------------------------------------

def test_the_edge_grid_round_trips_a_blueprint(admin_client, db):
    algorithm = Algorithm.objects.get(slug="navigable-ux")
    before = export_blueprint(algorithm)
    response = admin_client.post(change_url(algorithm), change_form_data(algorithm))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert export_blueprint(algorithm) == before
    assert load_blueprint(algorithm) == load_blueprint(algorithm)  # and it still loads


def test_the_grid_shows_a_row_per_state_and_a_column_per_trigger(admin_client, seed):
    body = admin_client.get(change_url(seed)).content.decode()
    signals = list(SignalType.objects.filter(algorithm=seed).values_list("name", flat=True))
    for j, trigger in enumerate(signals + ["DEFAULT", "BATCH"]):
        assert f'name="edges-grid-col-{j}" value="{trigger}"' in body
    assert '<select name="edges-grid-1-' in body and 'aria-label="H on BATCH"' in body


def test_a_new_state_gets_its_grid_row_then_saves_with_its_edges(admin_client, seed):
    data = change_form_data(seed)
    n = data["states-TOTAL_FORMS"]
    data.update({"states-TOTAL_FORMS": n + 1, f"states-{n}-algorithm": seed.pk,
                 **state_fields(f"states-{n}", "Deep", "sampled", {"n_topics": 3})})
    set_cell(data, "L-R", "BATCH", "Deep")

    first = admin_client.post(change_url(seed), data)

    body = first.content.decode()
    assert first.status_code == 200
    assert "state &#x27;Deep&#x27; has no BATCH edge" in body
    assert 'name="edges-grid-row-5" value="Deep"' in body  # its row, to fill in
    assert not State.objects.filter(algorithm=seed, name="Deep").exists()

    data["edges-grid-row-5"] = "Deep"
    for j, trigger in ((index_of(data, "edges-grid-col-{}", "BATCH"), "L-R"), (index_of(data, "edges-grid-col-{}", "DEFAULT"), "Deep")):
        data[f"edges-grid-5-{j}"] = trigger
    second = admin_client.post(change_url(seed), data)

    assert second.status_code == 302, second.content.decode()[:3000]
    assert Edge.objects.get(algorithm=seed, start="L-R", trigger="BATCH").end == "Deep"
    assert Edge.objects.get(algorithm=seed, start="Deep", trigger="BATCH").end == "L-R"
    assert State.objects.get(algorithm=seed, name="Deep").params == {"n_topics": 3}


def test_renaming_a_state_keeps_its_edges(admin_client, seed):
    data = change_form_data(seed)
    data[f"{state_prefix(data, 'M')}-name"] = "Mid"
    response = admin_client.post(change_url(seed), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not Edge.objects.filter(algorithm=seed, start="M").exists() and not Edge.objects.filter(algorithm=seed, end="M").exists()
    assert Edge.objects.get(algorithm=seed, start="Mid", trigger="BATCH").end == "L"
    assert Edge.objects.get(algorithm=seed, start="H", trigger="BATCH").end == "Mid"


def test_an_algorithm_is_added_in_two_saves_the_second_with_its_grid(admin_client, db):
    page = admin_client.get("/admin/algorithms/algorithm/add/").content.decode()
    assert "No states yet" in page
    data = {"name": "Tiny", "slug": "tiny", "description": "", "initial_state": "A", "traffic_share": 0,
            "batch_size": 5, "high_attention_ms": 15000, "mid_attention_ms": 12000, "low_attention_ms": 9000,
            "high_attention_ratio": "", "mid_attention_ratio": "", "low_attention_ratio": "",
            **management("states", 1, 0), **state_fields("states-0", "A", "random", {}),
            **management("signal_types", 1, 0), "signal_types-0-name": "LIKE", "signal_types-0-weight": 8,
            "signal_types-0-polarity": 1, **management("edges", 0)}

    first = admin_client.post("/admin/algorithms/algorithm/add/", data)

    assert "state &#x27;A&#x27; has no BATCH edge" in first.content.decode()
    assert 'name="edges-grid-row-0" value="A"' in first.content.decode()
    data.update({"edges-grid-row-0": "A", "edges-grid-col-0": "LIKE", "edges-grid-col-1": "DEFAULT",
                 "edges-grid-col-2": "BATCH", "edges-grid-0-0": "", "edges-grid-0-1": "A", "edges-grid-0-2": "A"})
    assert admin_client.post("/admin/algorithms/algorithm/add/", data).status_code == 302
    tiny = Algorithm.objects.get(slug="tiny")
    assert sorted(tiny.edges.values_list("trigger", "end")) == [("BATCH", "A"), ("DEFAULT", "A")]


# --- thresholds -------------------------------------------------------------------------------

def test_a_mid_ratio_without_a_high_ratio_is_refused(admin_client, seed):
    data = change_form_data(seed)
    data.update(mid_attention_ratio="0.5", low_attention_ratio="0.3")
    response = admin_client.post(change_url(seed), data)
    body = response.content.decode()
    assert response.status_code == 200
    assert "watch-ratio thresholds mid_ratio and low_ratio are set but high_ratio is not" in body
    seed.refresh_from_db()
    assert (seed.mid_attention_ratio, seed.low_attention_ratio) == (None, None)


def test_ratios_out_of_order_are_refused_and_valid_ones_save(admin_client, seed):
    data = change_form_data(seed)
    data.update(high_attention_ratio="0.5", mid_attention_ratio="0.8", low_attention_ratio="0.3")
    response = admin_client.post(change_url(seed), data)
    assert response.status_code == 200
    assert "watch-ratio thresholds must satisfy 10 &gt;= high &gt; mid &gt; low &gt; 0" in response.content.decode()

    data.update(high_attention_ratio="0.8", mid_attention_ratio="0.5")
    response = admin_client.post(change_url(seed), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    seed.refresh_from_db()
    assert seed.thresholds.relative
    assert (seed.high_attention_ratio, seed.mid_attention_ratio, seed.low_attention_ratio) == (0.8, 0.5, 0.3)


def test_the_thresholds_show_their_units(admin_client, seed):
    body = admin_client.get(change_url(seed)).content.decode()
    for level in ("high", "mid", "low"):
        assert f'name="{level}_attention_ms"' in body and f'name="{level}_attention_ratio"' in body
    assert "High attention from (ms)" in body and "or from (ratio)" in body and "Traffic share (%)" in body


# --- the picture ------------------------------------------------------------------------------

def test_the_page_carries_the_machine_as_mermaid_and_redraws_it_after_a_save(admin_client, seed):
    body = admin_client.get(change_url(seed)).content.decode()
    assert '<pre class="mermaid" id="machine-diagram">flowchart LR' in body
    assert "js/vendor/mermaid.min.js" in body and "js/admin-algorithm.js" in body
    assert "<script>" not in body  # the CSP allows no inline script

    data = change_form_data(seed)
    data[f"{state_prefix(data, 'H')}-param_last_n"] = "4"
    assert admin_client.post(change_url(seed), data).status_code == 302
    body = admin_client.get(change_url(seed)).content.decode()
    assert "last_n\u00a04 · r\u00a00 · mu\u00a00.05" in body, body.split('id="machine-diagram"')[1][:600]


# --- clone, import, export, make default ------------------------------------------------------

def test_clone_copies_the_machine_under_a_new_slug_without_traffic(admin_client, db):
    source = Algorithm.objects.get(slug="evidence")
    page = admin_client.get(f"/admin/algorithms/algorithm/{source.pk}/clone/")
    assert 'value="evidence-copy"' in page.content.decode()

    taken = admin_client.post(f"/admin/algorithms/algorithm/{source.pk}/clone/", {"name": "Copy", "slug": "seed-default"})
    assert "an algorithm with the slug &#x27;seed-default&#x27; exists already" in taken.content.decode()

    response = admin_client.post(f"/admin/algorithms/algorithm/{source.pk}/clone/", {"name": "Evidence B", "slug": "evidence-b"})

    clone = Algorithm.objects.get(slug="evidence-b")
    assert response.status_code == 302 and response["Location"] == change_url(clone)
    assert (clone.name, clone.is_default, clone.traffic_share, clone.batch_size) == ("Evidence B", False, 0, source.batch_size)
    assert load_blueprint(clone) == load_blueprint(source)
    assert clone.states.first().history.count() == 1  # the copy's rows are in the history too


def test_export_downloads_the_blueprint(admin_client, seed):
    response = admin_client.get(f"/admin/algorithms/algorithm/{seed.pk}/export/")
    assert response["Content-Disposition"] == 'attachment; filename="seed-default.json"'
    assert json.loads(response.content) == blueprint_to_json(load_blueprint(seed))


def test_import_saves_a_valid_blueprint_and_refuses_a_bad_one_saving_nothing(admin_client, seed):
    exported = admin_client.get(f"/admin/algorithms/algorithm/{seed.pk}/export/").content
    url = "/admin/algorithms/algorithm/import/"

    bad = admin_client.post(url, {"file": SimpleUploadedFile("b.json", b"{nodes: []"), "slug": "imported"})
    assert "the file is not valid JSON" in bad.content.decode() and "Nothing was imported" in bad.content.decode()
    broken = json.loads(exported)
    broken["edges"] = [e for e in broken["edges"] if not (e["start"] == "H" and e["edge_type"] == "BATCH")]
    broken["edges"][0]["end"] = "Nowhere"
    response = admin_client.post(url, {"file": SimpleUploadedFile("b.json", json.dumps(broken).encode()), "slug": "imported"})
    body = response.content.decode()
    assert "goes to state &#x27;Nowhere&#x27;, which the blueprint does not define" in body
    taken = admin_client.post(url, {"file": SimpleUploadedFile("b.json", exported), "slug": "seed-default"})
    assert "exists already (tick Replace to overwrite it)" in taken.content.decode()
    assert not Algorithm.objects.filter(slug="imported").exists()

    response = admin_client.post(url, {"file": SimpleUploadedFile("b.json", exported), "slug": "imported", "name": "Imported"})

    imported = Algorithm.objects.get(slug="imported")
    assert response.status_code == 302 and response["Location"] == change_url(imported)
    assert load_blueprint(imported) == load_blueprint(seed) and imported.name == "Imported"


def test_make_default_moves_the_default_and_records_both_changes(admin_client, admin_user, seed):
    previous = Algorithm.objects.get(is_default=True)
    assert admin_client.get(f"/admin/algorithms/algorithm/{seed.pk}/make-default/").status_code == 405
    response = admin_client.post(f"/admin/algorithms/algorithm/{seed.pk}/make-default/")
    assert response.status_code == 302
    assert list(Algorithm.objects.filter(is_default=True)) == [seed]
    for algorithm, is_default in ((previous, False), (seed, True)):
        record = algorithm.history.first()
        assert (record.is_default, record.history_user) == (is_default, admin_user)


def test_the_make_default_action_takes_exactly_one(admin_client, seed):
    url = "/admin/algorithms/algorithm/"
    both = admin_client.post(url, {"action": "make_default_action", "_selected_action": list(Algorithm.objects.values_list("pk", flat=True))}, follow=True)
    assert "Select exactly one algorithm." in both.content.decode()
    admin_client.post(url, {"action": "make_default_action", "_selected_action": [seed.pk]})
    assert list(Algorithm.objects.filter(is_default=True)) == [seed]


# --- audit ------------------------------------------------------------------------------------

def test_history_records_old_and_new_values_of_an_admin_edit(admin_client, admin_user, seed):
    data = change_form_data(seed)
    data["high_attention_ms"] = 14000
    data["traffic_share"] = 0
    data[f"{state_prefix(data, 'M')}-param_r"] = "0.2"
    set_cell(data, "H", "BATCH", "L")
    data[f"signal_types-{index_of(data, 'signal_types-{}-name', 'LIKE')}-weight"] = 9
    assert admin_client.post(change_url(seed), data).status_code == 302

    body = admin_client.get(f"/admin/algorithms/algorithm/{seed.pk}/history/").content.decode()

    algorithm_history = body.split('id="change-history"')[1].split("</table>")[0]  # simple-history's own list
    assert re.search(r"<strong>High attention ms:</strong>\s*15000\s*&nbsp;&rarr;&nbsp;&nbsp;14000", algorithm_history), algorithm_history
    part_history = body.split('id="part-history"')[1]
    assert "<strong>params.r:</strong> 0.1 &rarr; 0.2" in part_history
    assert "<strong>end:</strong> M &rarr; L" in part_history
    assert "<strong>weight:</strong> 8.0 &rarr; 9.0" in part_history
    assert admin_user.username in part_history


# --- permissions ------------------------------------------------------------------------------

def staff(django_user_model, username: str, *codenames: str) -> User:
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="algorithms", codename__in=codenames))
    return user


def test_staff_with_the_change_permission_edit(client, django_user_model, seed):
    client.force_login(staff(django_user_model, "editor", "view_algorithm", "change_algorithm"))
    page = client.get(change_url(seed)).content.decode()
    assert 'name="edges-grid-0-0"' in page and 'name="_save"' in page
    data = change_form_data(seed)
    data["high_attention_ms"] = 16000
    assert client.post(change_url(seed), data).status_code == 302
    seed.refresh_from_db()
    assert seed.high_attention_ms == 16000


def test_staff_with_the_view_permission_alone_see_the_page_read_only(client, django_user_model, seed):
    client.force_login(staff(django_user_model, "viewer", "view_algorithm"))
    page = client.get(change_url(seed))
    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="machine-diagram"' in body and "grid-0-0" not in body and 'name="_save"' not in body
    assert 'name="high_attention_ms"' not in body and "personalized" in body
    assert "Make default" not in body and "Clone" not in body and "Export blueprint JSON" in body
    assert client.post(change_url(seed), change_form_data(seed)).status_code == 403
    assert client.post(f"/admin/algorithms/algorithm/{seed.pk}/make-default/").status_code == 403
    assert client.post(f"/admin/algorithms/algorithm/{seed.pk}/clone/", {"name": "x", "slug": "x"}).status_code == 403
    assert client.get("/admin/algorithms/algorithm/import/").status_code == 403
    assert client.get(f"/admin/algorithms/algorithm/{seed.pk}/history/").status_code == 200
    assert not Algorithm.objects.filter(slug="x").exists()


def test_staff_without_algorithm_permissions_are_refused(client, django_user_model, seed):
    client.force_login(staff(django_user_model, "other"))
    assert client.get(change_url(seed)).status_code == 403
    assert client.get("/admin/algorithms/algorithm/").status_code == 403
    assert client.get(f"/admin/algorithms/algorithm/{seed.pk}/export/").status_code == 403


# --- the blueprint commands -------------------------------------------------------------------

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
