"""The ``evidence`` algorithm judges how far a region has been tried against how crowded the
catalog is there (``relative_coverage`` in both states); its states, edges, signals and
thresholds stay as they were, and ``seed-default`` is not touched.

The exploration bonus and the exploration slots read "how much was shown near this video" from a
wide kernel, which a crowded region fills from every video shown anywhere around it: a taste
there (one creator's near-identical videos inside a topic) looked tried before any of it was
shown, and was found less often than by chance.
"""
from django.db import migrations

from ._state_params import set_param

SLUG = "evidence"


def judge_relative(apps, schema_editor):
    set_param(apps, SLUG, "relative_coverage", True)


def judge_absolute(apps, schema_editor):
    set_param(apps, SLUG, "relative_coverage", None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0011_evidence_corroboration")]
    operations = [migrations.RunPython(judge_relative, judge_absolute)]
