"""Blueprints are cached by ``Algorithm.version``, which the database changes on every write.

Each test edits an algorithm the way some real writer does (the ORM, bulk operations that send
no Django signals, plain SQL, a save from a stale instance) and checks that the very next
``load_blueprint`` sees the edit.
"""
from django.db import connection
from django.test.utils import CaptureQueriesContext

from algorithms.models import Algorithm, Edge, SignalType, State
from algorithms.selectors import load_blueprint
from algorithms.services import export_blueprint, save_blueprint


def seed_algorithm() -> Algorithm:
    return Algorithm.objects.get(slug="seed-default")


def version_of(algorithm: Algorithm) -> int:
    return Algorithm.objects.values_list("version", flat=True).get(pk=algorithm.pk)


def test_an_unchanged_algorithm_is_read_with_one_small_query(db):
    algorithm = seed_algorithm()
    first = load_blueprint(algorithm)
    with CaptureQueriesContext(connection) as queries:
        again = load_blueprint(algorithm)
    assert again is first
    assert len(queries) == 1


def test_a_queryset_update_of_a_state_applies_to_the_next_read(db):
    algorithm = seed_algorithm()
    assert load_blueprint(algorithm).state("H").params["last_n"] == 3
    State.objects.filter(algorithm=algorithm, name="H").update(params={"last_n": 7})  # no Django signal
    assert load_blueprint(algorithm).state("H").params == {"last_n": 7}


def test_plain_sql_edits_of_edges_and_signal_types_apply_to_the_next_read(db):
    algorithm = seed_algorithm()
    load_blueprint(algorithm)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE algorithms_edge SET \"end\" = 'L-R' WHERE algorithm_id = %s AND start = 'H' AND trigger = 'BATCH'",
                       [algorithm.pk])
        cursor.execute("DELETE FROM algorithms_signaltype WHERE algorithm_id = %s AND name = 'SHARE'", [algorithm.pk])
    blueprint = load_blueprint(algorithm)
    assert [e.end for e in blueprint.edges if e.start == "H" and e.trigger == "BATCH"] == ["L-R"]
    assert "SHARE" not in blueprint.signal_names


def test_bulk_rewrites_and_new_rows_change_the_version(db):
    algorithm = seed_algorithm()
    before = load_blueprint(algorithm)
    versions = [version_of(algorithm)]
    SignalType.objects.create(algorithm=algorithm, name="REWATCH", weight=5.0, polarity=1)
    versions.append(version_of(algorithm))
    Edge.objects.filter(algorithm=algorithm, trigger="SHARE").delete()
    versions.append(version_of(algorithm))
    save_blueprint(export_blueprint(algorithm), slug="seed-default")  # bulk delete + bulk_create
    versions.append(version_of(algorithm))
    assert versions == sorted(set(versions)), "every write takes a new, higher version"
    assert "REWATCH" in load_blueprint(algorithm).signal_names
    assert "REWATCH" not in before.signal_names


def test_a_save_from_a_stale_instance_cannot_move_the_version_back(db):
    algorithm = seed_algorithm()
    stale = Algorithm.objects.get(pk=algorithm.pk)
    load_blueprint(algorithm)
    State.objects.filter(algorithm=algorithm, name="H").update(batch_type="random")
    edited = version_of(algorithm)
    stale.high_attention_ms = 20000
    stale.save()  # writes the version it read before the edit
    assert version_of(algorithm) > edited
    blueprint = load_blueprint(stale)
    assert blueprint.state("H").batch_type == "random"
    assert blueprint.thresholds.high_ms == 20000


def test_versions_are_not_reused_by_a_recreated_algorithm(db):
    algorithm = seed_algorithm()
    data, old_version = export_blueprint(algorithm), version_of(algorithm)
    algorithm.delete()
    recreated = save_blueprint(data, slug="seed-default")
    assert version_of(recreated) > old_version
