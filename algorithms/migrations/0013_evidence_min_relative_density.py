"""The ``evidence`` algorithm holds a region's relative density at least ``min_relative_density``
0.5 in both states (relative coverage alone held it at 0.25); its states, edges, signals and
thresholds stay as they were, and ``seed-default`` is not touched.

Relative coverage exists so that a crowded region is not taken for tried; the floor says how far
the opposite may go: at 0.25 one video shown near an isolated one counted four times, and the
tastes in sparse regions (#horse, #f1), which raw coverage had favoured, lost much of what it had
given them.
"""
from django.db import migrations

from ._state_params import set_param

SLUG = "evidence"
MIN_RELATIVE_DENSITY = 0.5


def raise_floor(apps, schema_editor):
    set_param(apps, SLUG, "min_relative_density", MIN_RELATIVE_DENSITY)


def restore_floor(apps, schema_editor):
    set_param(apps, SLUG, "min_relative_density", None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0012_evidence_relative_coverage")]
    operations = [migrations.RunPython(raise_floor, restore_floor)]
