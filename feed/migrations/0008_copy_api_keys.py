"""Move the keys partners hold (the library's ``APIKey`` rows) to ``PartnerKey``, with every
scope: before scopes existed a key could call everything, so deployed partners keep working.

The hash, prefix and id of each key move unchanged, so the keys themselves stay valid; so do
their name, revocation, expiry and creation time. The ``APIKey`` rows are then deleted, so that
keys live in one place (the admin shows only ``PartnerKey``). Reversed, the keys move back,
without their scopes (the code before scopes let every key call everything).
"""
from django.db import migrations

COPIED = ("id", "prefix", "hashed_key", "name", "revoked", "expiry_date")
ALL_SCOPES = {"scope_read": True, "scope_sessions": True, "scope_ingest": True}


def move(source, target, **extra):
    rows = list(source.objects.all())
    target.objects.bulk_create([target(**{f: getattr(row, f) for f in COPIED}, **extra) for row in rows])
    # ``created`` is auto_now_add, which bulk_create sets to now: put each key's own back.
    for row in rows:
        target.objects.filter(pk=row.pk).update(created=row.created)
    source.objects.filter(pk__in=[row.pk for row in rows]).delete()


def forwards(apps, schema_editor):
    move(apps.get_model("rest_framework_api_key", "APIKey"), apps.get_model("feed", "PartnerKey"), **ALL_SCOPES)


def backwards(apps, schema_editor):
    move(apps.get_model("feed", "PartnerKey"), apps.get_model("rest_framework_api_key", "APIKey"))


class Migration(migrations.Migration):
    dependencies = [
        ("feed", "0007_partner_keys"),
        ("rest_framework_api_key", "0005_auto_20220110_1102"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
