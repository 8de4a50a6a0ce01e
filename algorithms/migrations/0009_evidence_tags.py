"""The ``evidence`` algorithm weighs shared hashtags (``tag_weight`` 0.3 in both states); its
states, edges, signals and thresholds stay as they were, and ``seed-default`` is not touched.

A video that shares rare hashtags with one the viewer watched long is recalled and scored as
near it, so a taste its videos' vectors scatter (#funny) is found from what they are tagged; a
skip counts against its vector neighbours only, and exploration covers regions by vectors alone.
"""
from django.db import migrations

from ._state_params import set_param

SLUG = "evidence"
TAG_WEIGHT = 0.3


def weigh_tags(apps, schema_editor):
    set_param(apps, SLUG, "tag_weight", TAG_WEIGHT)


def unweigh_tags(apps, schema_editor):
    set_param(apps, SLUG, "tag_weight", None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0008_admin")]
    operations = [migrations.RunPython(weigh_tags, unweigh_tags)]
