"""``Hashtag.video_count`` follows every write to the video-hashtag links, whoever makes it
(catalog/migrations/0007's triggers), and the migration counts the links that exist."""
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count

from catalog.models import Hashtag, Video

LINKS = Video.hashtags.through


def _assert_counts_are_the_links():
    links = dict(LINKS.objects.values("hashtag_id").annotate(n=Count("id")).values_list("hashtag_id", "n"))
    counts = dict(Hashtag.objects.values_list("id", "video_count"))
    assert counts == {pk: links.get(pk, 0) for pk in counts}


def _count(tag: Hashtag) -> int:
    return Hashtag.objects.values_list("video_count", flat=True).get(pk=tag.pk)


def test_the_imported_catalog_is_counted(catalog_db):
    # import_trending deletes a chunk's links and inserts them again, in bulk.
    assert Hashtag.objects.filter(video_count__gt=10).exists()
    _assert_counts_are_the_links()


def test_link_edits_through_the_orm_are_counted(catalog_db):
    video, other = Video.objects.filter(hashtags__isnull=False).distinct().order_by("id")[:2]
    tags = list(video.hashtags.order_by("id"))
    fresh = Hashtag.objects.create(name="zz-fresh", video_count=99)  # a count written is not kept
    assert _count(fresh) == 0

    video.hashtags.add(fresh)
    other.hashtags.add(fresh)
    video.hashtags.remove(tags[0])
    assert _count(fresh) == 2
    _assert_counts_are_the_links()

    video.hashtags.set([fresh, *tags[1:], *other.hashtags.all()])
    _assert_counts_are_the_links()
    other.hashtags.clear()
    assert _count(fresh) == 1
    video.delete()  # Django deletes the video's links first, with no m2m signal
    assert _count(fresh) == 0
    _assert_counts_are_the_links()


def test_a_stale_save_or_an_update_keeps_the_count(catalog_db):
    tag = Hashtag.objects.filter(video_count__gt=1).order_by("id").first()
    stale = Hashtag.objects.get(pk=tag.pk)
    Video.objects.exclude(hashtags=tag).order_by("id").first().hashtags.add(tag)

    stale.name = "renamed"
    stale.save()  # writes the count it read, one short
    Hashtag.objects.filter(pk=tag.pk).update(video_count=0)

    assert _count(tag) == tag.video_count + 1
    assert Hashtag.objects.get(pk=tag.pk).name == "renamed"


def test_plain_sql_and_truncate_are_counted(catalog_db):
    first, second = Hashtag.objects.filter(video_count__gt=0).order_by("id")[:2]
    video = Video.objects.exclude(hashtags=first).exclude(hashtags=second).order_by("id").first()
    links, tags = LINKS._meta.db_table, Hashtag._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {links} (video_id, hashtag_id) VALUES (%s, %s)", [video.pk, first.pk])
        assert _count(first) == first.video_count + 1
        cursor.execute(f"UPDATE {links} SET hashtag_id = %s WHERE video_id = %s AND hashtag_id = %s",
                       [second.pk, video.pk, first.pk])
        assert (_count(first), _count(second)) == (first.video_count, second.video_count + 1)
        _assert_counts_are_the_links()

        # As bench/batch.py replaces a catalog: the links go with the videos. (The links' foreign
        # keys are checked at commit; TRUNCATE wants no check pending.)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"TRUNCATE {Video._meta.db_table} CASCADE")
        cursor.execute(f"SELECT count(*) FROM {tags} WHERE video_count <> 0")
        assert cursor.fetchone()[0] == 0


def test_the_migration_counts_the_links_there_are(catalog_db):
    executor = MigrationExecutor(connection)
    executor.migrate([("catalog", "0005_comment_authors")])
    LINKS.objects.filter(pk__in=LINKS.objects.order_by("id").values("pk")[:50]).delete()  # uncounted now

    executor.loader.build_graph()
    executor.migrate([("catalog", "0007_hashtag_video_count")])

    _assert_counts_are_the_links()
    assert Hashtag.objects.filter(video_count__gt=10).exists()
