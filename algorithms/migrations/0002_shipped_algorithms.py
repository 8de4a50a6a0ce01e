"""Ship the seed app's five-state algorithm (the default) and FirstBatch's library.

Blueprints are read from the JSON files in ``algorithms/blueprints/`` and parsed by the pure
``algorithms.blueprints`` module; rows are written through the historical models
(``services.write_rows`` accepts them).

"User-Intent AI Agents" is shipped corrected: as published, its four DEFAULT edges go to
``Hyper_Focus``, a state it never defines, and its edge names repeat. The corrected file sends
those DEFAULT edges to ``Focus`` (the defined state closest in meaning) and numbers the edges.
"""
from pathlib import Path

from django.db import migrations

from algorithms.blueprints import parse_blueprint
from algorithms.services import write_rows

BLUEPRINTS = Path(__file__).resolve().parent.parent / "blueprints"

SHIPPED = [
    ("seed-default", "Seed attention ladder (0 · H · M · L · L-R)", "seed_default.json",
     "The seed app's algorithm: high attention focuses, skipping drifts toward exploration.", True),
    ("navigable-ux", "Navigable UX", "navigable_ux.json", "FirstBatch library.", False),
    ("individually-crafted-recommendations", "Individually Crafted Recommendations",
     "individually_crafted_recommendations.json", "FirstBatch library.", False),
    ("unique-journeys", "Unique Journeys", "unique_journeys.json", "FirstBatch library.", False),
    ("user-centric-promoted-content-curations", "User-Centric Promoted Content Curations",
     "user_centric_promoted_content_curations.json", "FirstBatch library.", False),
    ("user-intent-ai-agents", "User-Intent AI Agents", "user_intent_ai_agents_corrected.json",
     "FirstBatch library, corrected: its DEFAULT edges pointed at the undefined state "
     "'Hyper_Focus'; they go to 'Focus' here.", False),
]


def ship(apps, schema_editor):
    Algorithm = apps.get_model("algorithms", "Algorithm")
    State = apps.get_model("algorithms", "State")
    Edge = apps.get_model("algorithms", "Edge")
    SignalType = apps.get_model("algorithms", "SignalType")
    for slug, name, filename, description, is_default in SHIPPED:
        blueprint = parse_blueprint((BLUEPRINTS / filename).read_text())
        algorithm = Algorithm.objects.create(
            slug=slug, name=name, description=description, is_default=is_default,
            initial_state=blueprint.initial,
            high_attention_ms=blueprint.thresholds.high_ms,
            mid_attention_ms=blueprint.thresholds.mid_ms,
            low_attention_ms=blueprint.thresholds.low_ms,
        )
        write_rows(algorithm, blueprint, models=(State, Edge, SignalType))


def unship(apps, schema_editor):
    apps.get_model("algorithms", "Algorithm").objects.filter(slug__in=[s[0] for s in SHIPPED]).delete()


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0001_initial")]
    operations = [migrations.RunPython(ship, unship)]
