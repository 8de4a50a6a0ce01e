"""``Hashtag.video_count``: how many videos carry each hashtag, kept by the database.

Tag rarity (``algorithms.ranking.catalog.tag_idf``) is read on every batch of an algorithm that
weighs hashtags; counting the links there cost several ms a batch on the real catalog
(bench/batch.py). The count must follow every write to the links, whoever makes it: the
importers, partner ingestion, the admin's hashtag picker, ``Video`` deletes (Django deletes
the links first, sending no m2m signals), a data migration or plain SQL. Triggers in the
database are the one place that sees them all:

- each INSERT, UPDATE or DELETE statement on the links adds its net change per hashtag (one
  UPDATE per statement, from the statement's transition tables, so a bulk insert of thousands
  of links costs one pass); the hashtag rows are locked in id order first, so two concurrent
  writers meet their tags in the same order;
- a TRUNCATE of the links (``TRUNCATE catalog_video ... CASCADE`` reaches them) sets every
  count to 0;
- a write to a hashtag row itself keeps the count the database has (an admin save from a
  stale instance would write an old count back): only the triggers above change it.

Counts are of links, videos with or without a vector, as the rarity counts were.
"""
from django.db import migrations, models

FORWARD = """
UPDATE catalog_hashtag h SET video_count = c.n
  FROM (SELECT hashtag_id, count(*) AS n FROM catalog_video_hashtags GROUP BY hashtag_id) c
 WHERE c.hashtag_id = h.id;

CREATE FUNCTION catalog_hashtag_keep_video_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Depth 1: a write to the hashtag itself. Deeper: the links' triggers below.
    IF pg_trigger_depth() = 1 THEN
        NEW.video_count := CASE WHEN TG_OP = 'INSERT' THEN 0 ELSE OLD.video_count END;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER catalog_hashtag_keep_video_count
    BEFORE INSERT OR UPDATE ON catalog_hashtag
    FOR EACH ROW EXECUTE FUNCTION catalog_hashtag_keep_video_count();

CREATE FUNCTION catalog_video_hashtags_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tags bigint[];
    changes bigint[];
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE catalog_hashtag SET video_count = 0 WHERE video_count <> 0;
        RETURN NULL;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT array_agg(hashtag_id ORDER BY hashtag_id), array_agg(n ORDER BY hashtag_id) INTO tags, changes
          FROM (SELECT hashtag_id, count(*) AS n FROM added GROUP BY hashtag_id) c;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(hashtag_id ORDER BY hashtag_id), array_agg(n ORDER BY hashtag_id) INTO tags, changes
          FROM (SELECT hashtag_id, -count(*) AS n FROM removed GROUP BY hashtag_id) c;
    ELSE
        SELECT array_agg(hashtag_id ORDER BY hashtag_id), array_agg(n ORDER BY hashtag_id) INTO tags, changes
          FROM (SELECT hashtag_id, sum(n) AS n
                  FROM (SELECT hashtag_id, 1 AS n FROM added UNION ALL SELECT hashtag_id, -1 FROM removed) d
                 GROUP BY hashtag_id HAVING sum(n) <> 0) c;
    END IF;
    IF tags IS NOT NULL THEN
        PERFORM 1 FROM catalog_hashtag WHERE id = ANY(tags) ORDER BY id FOR UPDATE;
        UPDATE catalog_hashtag h SET video_count = h.video_count + c.n
          FROM unnest(tags, changes) AS c(id, n) WHERE h.id = c.id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER catalog_video_hashtags_count_insert
    AFTER INSERT ON catalog_video_hashtags REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_video_hashtags_count();
CREATE TRIGGER catalog_video_hashtags_count_delete
    AFTER DELETE ON catalog_video_hashtags REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_video_hashtags_count();
CREATE TRIGGER catalog_video_hashtags_count_update
    AFTER UPDATE ON catalog_video_hashtags REFERENCING OLD TABLE AS removed NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_video_hashtags_count();
CREATE TRIGGER catalog_video_hashtags_count_truncate
    AFTER TRUNCATE ON catalog_video_hashtags
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_video_hashtags_count();
"""

BACKWARD = """
DROP TRIGGER catalog_video_hashtags_count_truncate ON catalog_video_hashtags;
DROP TRIGGER catalog_video_hashtags_count_update ON catalog_video_hashtags;
DROP TRIGGER catalog_video_hashtags_count_delete ON catalog_video_hashtags;
DROP TRIGGER catalog_video_hashtags_count_insert ON catalog_video_hashtags;
DROP FUNCTION catalog_video_hashtags_count();
DROP TRIGGER catalog_hashtag_keep_video_count ON catalog_hashtag;
DROP FUNCTION catalog_hashtag_keep_video_count();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("catalog", "0005_comment_authors"),
    ]

    operations = [
        migrations.AddField(
            model_name="hashtag",
            name="video_count",
            field=models.BigIntegerField(
                default=0, editable=False, help_text="Videos with this hashtag (kept up to date by the database).",
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
    ]
