"""Watch-ratio thresholds (watched time / video duration), next to the ms ones.

New nullable columns on ``algorithms_algorithm``: adding them rewrites no row, so the version
triggers of 0003 fire for nothing here, and every later write to them bumps the version like any
other column (the trigger is per row, not per column).
"""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("algorithms", "0003_algorithm_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="algorithm",
            name="high_attention_ratio",
            field=models.FloatField(
                blank=True, null=True,
                help_text="Watched time / video duration that is high attention too (above 1: loops). "
                          "Set all three ratios or none; empty = the ms thresholds alone.",
            ),
        ),
        migrations.AddField(
            model_name="algorithm",
            name="mid_attention_ratio",
            field=models.FloatField(
                blank=True, null=True, help_text="Watch ratio that is mid attention (below the high ratio).",
            ),
        ),
        migrations.AddField(
            model_name="algorithm",
            name="low_attention_ratio",
            field=models.FloatField(
                blank=True, null=True,
                help_text="Watch ratio that is low attention (below the mid ratio); less is a skip.",
            ),
        ),
    ]
