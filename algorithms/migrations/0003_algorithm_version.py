"""``Algorithm.version``: a number that changes whenever an algorithm or any of its rows changes.

``selectors.load_blueprint`` caches blueprints by version, so the version must change on every
write, whoever makes it: the admin, ``save_blueprint``'s bulk inserts and deletes (which send no
Django signals), a data migration or plain SQL. Triggers in the database are the one place that
sees them all:

- every INSERT or UPDATE of an algorithm row takes a fresh value from a sequence, whatever value
  the writer sent (a save from a stale instance cannot move the version back);
- every INSERT, UPDATE or DELETE of a state, an edge or a signal type touches its algorithm's
  row, which takes a fresh value in turn.

Values come from one sequence shared by all algorithms and owned by no column (so TRUNCATE ...
RESTART IDENTITY leaves it alone): a version is never reused, even by an algorithm recreated
under the same id.
"""
from django.db import migrations, models

FORWARD = """
CREATE SEQUENCE algorithms_algorithm_version_seq;

CREATE FUNCTION algorithms_algorithm_new_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := nextval('algorithms_algorithm_version_seq');
    RETURN NEW;
END $$;

CREATE TRIGGER algorithms_algorithm_new_version
    BEFORE INSERT OR UPDATE ON algorithms_algorithm
    FOR EACH ROW EXECUTE FUNCTION algorithms_algorithm_new_version();

CREATE FUNCTION algorithms_row_touches_algorithm() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE algorithms_algorithm SET version = 0 WHERE id = OLD.algorithm_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.algorithm_id <> OLD.algorithm_id) THEN
        UPDATE algorithms_algorithm SET version = 0 WHERE id = NEW.algorithm_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER algorithms_state_touches_algorithm
    AFTER INSERT OR UPDATE OR DELETE ON algorithms_state
    FOR EACH ROW EXECUTE FUNCTION algorithms_row_touches_algorithm();
CREATE TRIGGER algorithms_edge_touches_algorithm
    AFTER INSERT OR UPDATE OR DELETE ON algorithms_edge
    FOR EACH ROW EXECUTE FUNCTION algorithms_row_touches_algorithm();
CREATE TRIGGER algorithms_signaltype_touches_algorithm
    AFTER INSERT OR UPDATE OR DELETE ON algorithms_signaltype
    FOR EACH ROW EXECUTE FUNCTION algorithms_row_touches_algorithm();

-- The algorithms that exist already take their first version.
UPDATE algorithms_algorithm SET version = 0;
"""

BACKWARD = """
DROP TRIGGER algorithms_signaltype_touches_algorithm ON algorithms_signaltype;
DROP TRIGGER algorithms_edge_touches_algorithm ON algorithms_edge;
DROP TRIGGER algorithms_state_touches_algorithm ON algorithms_state;
DROP FUNCTION algorithms_row_touches_algorithm();
DROP TRIGGER algorithms_algorithm_new_version ON algorithms_algorithm;
DROP FUNCTION algorithms_algorithm_new_version();
DROP SEQUENCE algorithms_algorithm_version_seq;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("algorithms", "0002_shipped_algorithms"),
    ]

    operations = [
        migrations.AddField(
            model_name="algorithm",
            name="version",
            field=models.BigIntegerField(
                default=0, editable=False,
                help_text="Changes whenever this algorithm, one of its states, edges or signal types changes.",
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
