"""Ship the tuned params of the ``evidence`` algorithm (``evidence_default.json``); its states,
edges, signals and thresholds stay as they were, and ``seed-default`` is not touched.

``creator_trust`` 2: the two-in-five per-creator cap yields to a creator of whom the viewer has
watched two videos long (more than they skipped): agreement, where one noisy long watch does not
capture the feed. A viewer who likes one creator was held to two of five cards before.
"""
import json
from pathlib import Path

from django.db import migrations

from ._state_params import change_states

BLUEPRINT = Path(__file__).resolve().parent.parent / "blueprints" / "evidence_default.json"
SLUG = "evidence"
#: The params 0005 shipped, restored by the reverse migration.
PREVIOUS = {"last_n": 20, "alpha": 1.0, "explore_regions": True, "score_last_n": 30, "kernel_width": 0.2,
            "explore_bonus": 0.4, "creator_cap": 2, "max_queries": 2}
PREVIOUS_R = {"explore": 0.2, "focus": 0.0}


def tune(apps, schema_editor):
    nodes = {node["name"]: node["params"] for node in json.loads(BLUEPRINT.read_text())["nodes"]}
    change_states(apps, SLUG, lambda name, _: nodes.get(name))


def untune(apps, schema_editor):
    change_states(apps, SLUG, lambda name, _: {**PREVIOUS, "r": PREVIOUS_R[name]} if name in PREVIOUS_R else None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0006_dashboard")]
    operations = [migrations.RunPython(tune, untune)]
