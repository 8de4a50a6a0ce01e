"""The ``evidence`` algorithm believes a long watch less when the viewer then skips its
neighbours (``corroboration`` 3 in both states); its states, edges, signals and thresholds stay
as they were, and ``seed-default`` is not touched.

One noisy long watch (a viewer's 10 % of skips flipped to long watches) no longer pulls tens of
its vector and tag neighbours into the feed after the first few of them were skipped: the skips
discount the watch itself, so its tag-mates (which a skip does not speak against) fall with it.
"""
from django.db import migrations

from ._state_params import set_param

SLUG = "evidence"
CORROBORATION = 3.0


def corroborate(apps, schema_editor):
    set_param(apps, SLUG, "corroboration", CORROBORATION)


def uncorroborate(apps, schema_editor):
    set_param(apps, SLUG, "corroboration", None)


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0010_reranker_model")]
    operations = [migrations.RunPython(corroborate, uncorroborate)]
