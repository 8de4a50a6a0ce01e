"""The ``evidence`` algorithm holds a region's relative density at least ``min_relative_density``
0.5 in both states (relative coverage alone held it at 0.25); its states, edges, signals and
thresholds stay as they were, and ``seed-default`` is not touched.

Relative coverage exists so that a crowded region is not taken for tried; the floor says how far
the opposite may go: at 0.25 one video shown near an isolated one counted four times, and the
tastes in sparse regions (#horse, #f1), which raw coverage had favoured, lost much of what it had
given them.
"""
from django.db import migrations
from django.db.models import F

SLUG = "evidence"
MIN_RELATIVE_DENSITY = 0.5


def _set_min_relative_density(apps, value) -> None:
    Algorithm = apps.get_model("algorithms", "Algorithm")
    State = apps.get_model("algorithms", "State")
    algorithm = Algorithm.objects.filter(slug=SLUG).first()
    if algorithm is None:
        return
    for state in State.objects.filter(algorithm=algorithm):
        params = dict(state.params)
        if value is None:
            params.pop("min_relative_density", None)
        else:
            params["min_relative_density"] = value
        state.params = params
        state.save(update_fields=["params"])
    # A new version: sessions re-read the blueprint (params are parsed once per version).
    Algorithm.objects.filter(pk=algorithm.pk).update(version=F("version") + 1)


def raise_floor(apps, schema_editor):
    _set_min_relative_density(apps, MIN_RELATIVE_DENSITY)


def restore_floor(apps, schema_editor):
    _set_min_relative_density(apps, None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0012_evidence_relative_coverage")]
    operations = [migrations.RunPython(raise_floor, restore_floor)]
