"""The ``evidence`` algorithm believes a long watch less when the viewer then skips its
neighbours (``corroboration`` 3 in both states); its states, edges, signals and thresholds stay
as they were, and ``seed-default`` is not touched.

One noisy long watch (a viewer's 10 % of skips flipped to long watches) no longer pulls tens of
its vector and tag neighbours into the feed after the first few of them were skipped: the skips
discount the watch itself, so its tag-mates (which a skip does not speak against) fall with it.
"""
from django.db import migrations
from django.db.models import F

SLUG = "evidence"
CORROBORATION = 3.0


def _set_corroboration(apps, value) -> None:
    Algorithm = apps.get_model("algorithms", "Algorithm")
    State = apps.get_model("algorithms", "State")
    algorithm = Algorithm.objects.filter(slug=SLUG).first()
    if algorithm is None:
        return
    for state in State.objects.filter(algorithm=algorithm):
        params = dict(state.params)
        if value is None:
            params.pop("corroboration", None)
        else:
            params["corroboration"] = value
        state.params = params
        state.save(update_fields=["params"])
    # A new version: sessions re-read the blueprint (params are parsed once per version).
    Algorithm.objects.filter(pk=algorithm.pk).update(version=F("version") + 1)


def corroborate(apps, schema_editor):
    _set_corroboration(apps, CORROBORATION)


def uncorroborate(apps, schema_editor):
    _set_corroboration(apps, None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0010_reranker_model")]
    operations = [migrations.RunPython(corroborate, uncorroborate)]
