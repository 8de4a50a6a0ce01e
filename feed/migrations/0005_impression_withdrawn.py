from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('feed', '0004_signal_duration'),
    ]

    operations = [
        migrations.AddField(
            model_name='impression',
            name='withdrawn',
            field=models.BooleanField(db_default=False, default=False, help_text='replaced before it was shown (the feed re-ranked its upcoming cards after a view); a view of it is still accepted, and history still excludes it'),
        ),
    ]
