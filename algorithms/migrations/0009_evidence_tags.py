"""The ``evidence`` algorithm weighs shared hashtags (``tag_weight`` 0.3 in both states); its
states, edges, signals and thresholds stay as they were, and ``seed-default`` is not touched.

A video that shares rare hashtags with one the viewer watched long is recalled and scored as
near it, so a taste its videos' vectors scatter (#funny) is found from what they are tagged; a
skip counts against its vector neighbours only, and exploration covers regions by vectors alone.
"""
from django.db import migrations
from django.db.models import F

SLUG = "evidence"
TAG_WEIGHT = 0.3


def _set_tag_weight(apps, value) -> None:
    Algorithm = apps.get_model("algorithms", "Algorithm")
    State = apps.get_model("algorithms", "State")
    algorithm = Algorithm.objects.filter(slug=SLUG).first()
    if algorithm is None:
        return
    for state in State.objects.filter(algorithm=algorithm):
        params = dict(state.params)
        if value is None:
            params.pop("tag_weight", None)
        else:
            params["tag_weight"] = value
        state.params = params
        state.save(update_fields=["params"])
    # A new version: sessions re-read the blueprint (params are parsed once per version).
    Algorithm.objects.filter(pk=algorithm.pk).update(version=F("version") + 1)


def weigh_tags(apps, schema_editor):
    _set_tag_weight(apps, TAG_WEIGHT)


def unweigh_tags(apps, schema_editor):
    _set_tag_weight(apps, None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0008_admin")]
    operations = [migrations.RunPython(weigh_tags, unweigh_tags)]
