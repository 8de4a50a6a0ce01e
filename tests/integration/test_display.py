"""``catalog.selectors.videos_for_display``: written-out SQL that must load what the ORM would."""
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Hashtag, Music, Video
from catalog.selectors import videos_for_display
from catalog.serializers import VideoSerializer


def test_display_videos_serialise_as_the_orms_do(catalog_db):
    with_music = Video.objects.filter(music__isnull=False).order_by("id").values_list("id", flat=True)[:20]
    tagged = Video.objects.filter(hashtags__isnull=False).order_by("id").values_list("id", flat=True)[:20]
    ids = sorted(set(with_music) | set(tagged))
    orm = Video.objects.select_related("creator", "music").prefetch_related("hashtags").in_bulk(ids)

    shown = videos_for_display(ids)

    assert sorted(shown) == ids
    assert VideoSerializer([shown[i] for i in ids], many=True).data == VideoSerializer([orm[i] for i in ids], many=True).data
    assert any(len(shown[i].hashtags.all()) > 1 for i in ids)


def test_display_videos_need_no_further_queries(catalog_db):
    ids = list(Video.objects.filter(hashtags__isnull=False, music__isnull=False).values_list("id", flat=True)[:5])
    with CaptureQueriesContext(connection) as queries:
        videos = videos_for_display(ids)
        for video in videos.values():
            video.creator.handle, video.music.name, [tag.name for tag in video.hashtags.all()]
    assert len(queries) == 1


def test_display_video_without_music_or_hashtags(catalog_db):
    video = Video.objects.filter(hashtags__isnull=False).first()
    video.hashtags.clear()
    Video.objects.filter(pk=video.pk).update(music=None)

    shown = videos_for_display([video.pk])[video.pk]

    assert shown.music is None and list(shown.hashtags.all()) == []
    assert Music.objects.exists() and Hashtag.objects.exists()


def test_display_hashtags_come_in_name_order(catalog_db):
    video = Video.objects.filter(hashtags__isnull=False).first()
    video.hashtags.add(Hashtag.objects.create(name="aaa-first"), Hashtag.objects.create(name="zzz-last"))

    names = [tag.name for tag in videos_for_display([video.pk])[video.pk].hashtags.all()]

    assert names == sorted(names) and names[0] == "aaa-first" and names[-1] == "zzz-last"


def test_display_of_no_videos_is_empty(catalog_db):
    assert videos_for_display([]) == {}
