"""Ship the evidence algorithm (``evidence_default.json``) as the default; ``seed-default``
stays as it was, no longer the default, so the two can be compared (``manage.py evaluate_feed``).

Evidence ranking scores candidates against the viewer's recent watches *and* skips, exploration
covers the catalog's regions, a creator has at most two videos in any five, and a view counts by
watch ratio as well as by seconds (a short video watched to the end is attention).
"""
from pathlib import Path

from django.db import migrations

from algorithms.blueprints import parse_blueprint
from algorithms.services import write_rows

BLUEPRINT = Path(__file__).resolve().parent.parent / "blueprints" / "evidence_default.json"
SLUG = "evidence"


def ship(apps, schema_editor):
    Algorithm = apps.get_model("algorithms", "Algorithm")
    models = (apps.get_model("algorithms", "State"), apps.get_model("algorithms", "Edge"),
              apps.get_model("algorithms", "SignalType"))
    blueprint = parse_blueprint(BLUEPRINT.read_text())
    thresholds = blueprint.thresholds
    Algorithm.objects.filter(is_default=True).update(is_default=False)
    algorithm = Algorithm.objects.create(
        slug=SLUG, name="Evidence (explore · focus)", is_default=True,
        description="Ranks by what the viewer watched and skipped; explores regions not yet tried; "
                    "at most two videos of a creator in five; watch ratio counts.",
        initial_state=blueprint.initial,
        high_attention_ms=thresholds.high_ms, mid_attention_ms=thresholds.mid_ms, low_attention_ms=thresholds.low_ms,
        high_attention_ratio=thresholds.high_ratio, mid_attention_ratio=thresholds.mid_ratio,
        low_attention_ratio=thresholds.low_ratio,
    )
    write_rows(algorithm, blueprint, models=models)


def unship(apps, schema_editor):
    Algorithm = apps.get_model("algorithms", "Algorithm")
    Algorithm.objects.filter(slug=SLUG).delete()
    Algorithm.objects.filter(slug="seed-default").update(is_default=True)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0004_relative_thresholds")]
    operations = [migrations.RunPython(ship, unship)]
