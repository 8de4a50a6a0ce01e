"""A baseline in the audit history for every algorithm, state, edge and signal type that has none.

The shipped algorithms were written by data migrations before their history was kept (0006), so
the first edit of one would show what it changed to but not what it changed from. A baseline
record ("created", as the row is now) gives that edit its old values.
"""
from django.db import migrations
from django.utils import timezone

REASON = "baseline: as it was when auditing began"


def record_baselines(apps, schema_editor):
    now = timezone.now()
    for name in ("Algorithm", "State", "Edge", "SignalType"):
        model = apps.get_model("algorithms", name)
        history = apps.get_model("algorithms", f"Historical{name}")
        recorded = set(history.objects.values_list("id", flat=True).distinct())
        tracked = [f for f in history._meta.concrete_fields if not f.name.startswith("history_")]
        history.objects.bulk_create(
            history(**{f.attname: getattr(row, f.attname) for f in tracked},
                    history_date=now, history_type="+", history_change_reason=REASON)
            for row in model.objects.exclude(pk__in=recorded)
        )


class Migration(migrations.Migration):
    dependencies = [("algorithms", "0007_evidence_tuning")]
    operations = [migrations.RunPython(record_baselines, migrations.RunPython.noop)]
