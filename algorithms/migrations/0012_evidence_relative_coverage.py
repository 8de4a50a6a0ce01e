"""The ``evidence`` algorithm judges how far a region has been tried against how crowded the
catalog is there (``relative_coverage`` in both states); its states, edges, signals and
thresholds stay as they were, and ``seed-default`` is not touched.

The exploration bonus and the exploration slots read "how much was shown near this video" from a
wide kernel, which a crowded region fills from every video shown anywhere around it: a taste
there (one creator's near-identical videos inside a topic) looked tried before any of it was
shown, and was found less often than by chance.
"""
from django.db import migrations
from django.db.models import F

SLUG = "evidence"


def _set_relative_coverage(apps, value) -> None:
    Algorithm = apps.get_model("algorithms", "Algorithm")
    State = apps.get_model("algorithms", "State")
    algorithm = Algorithm.objects.filter(slug=SLUG).first()
    if algorithm is None:
        return
    for state in State.objects.filter(algorithm=algorithm):
        params = dict(state.params)
        if value is None:
            params.pop("relative_coverage", None)
        else:
            params["relative_coverage"] = value
        state.params = params
        state.save(update_fields=["params"])
    # A new version: sessions re-read the blueprint (params are parsed once per version).
    Algorithm.objects.filter(pk=algorithm.pk).update(version=F("version") + 1)


def judge_relative(apps, schema_editor):
    _set_relative_coverage(apps, True)


def judge_absolute(apps, schema_editor):
    _set_relative_coverage(apps, None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0011_evidence_corroboration")]
    operations = [migrations.RunPython(judge_relative, judge_absolute)]
