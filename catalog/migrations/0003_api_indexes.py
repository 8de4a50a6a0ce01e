"""Indexes for the partner catalog's filters (catalog/filters.py says which serves what).

Written as SQL rather than ``Meta.indexes``: they serve the API's filters only, and the text
search one is over an expression (``to_tsvector('simple', caption)``) that must be exactly the
one ``catalog.filters.caption_search_vector`` compiles to, for the planner to use it.
"""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_topics")]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS catalog_video_language ON catalog_video (language)",
            "DROP INDEX IF EXISTS catalog_video_language",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS catalog_creator_followers ON catalog_creator (follower_count)",
            "DROP INDEX IF EXISTS catalog_creator_followers",
        ),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS catalog_video_caption_search ON catalog_video "
            "USING gin (to_tsvector('simple'::regconfig, COALESCE(caption, '')))",
            "DROP INDEX IF EXISTS catalog_video_caption_search",
        ),
    ]
