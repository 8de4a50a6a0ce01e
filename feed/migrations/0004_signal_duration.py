from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('feed', '0003_session_partner'),
    ]

    operations = [
        migrations.AddField(
            model_name='signal',
            name='duration_ms',
            field=models.PositiveIntegerField(blank=True, help_text="the video's length for a view: the client's, else the catalog's; empty when unknown", null=True),
        ),
    ]
