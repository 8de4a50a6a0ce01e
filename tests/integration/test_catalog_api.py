"""The partner catalog (``/api/v1/videos/``, ``/api/v1/creators/``) on the real, embedded
catalog in PostgreSQL: each filter keeps exactly the videos it should, cursor pages walk the
whole result once in a stable order, bad filter values are refused in the API's error shape,
and reads carry an ETag and Cache-Control that answer a conditional GET with 304."""
from datetime import datetime, timezone

import pytest
from django.db.models import Count

from catalog.models import Creator, Video

VIDEOS = "/api/v1/videos/"


def ids_of(client, url, **params) -> list[int]:
    """The ids of every video the list gives for ``params``, following ``next`` to the end."""
    response = client.get(url, params)
    assert response.status_code == 200, response.json()
    ids = []
    while True:
        body = response.json()
        ids += [item["id"] for item in body["results"]]
        if not body["next"]:
            return ids
        response = client.get(body["next"])
        assert response.status_code == 200, response.json()


def expected(videos) -> list[int]:
    return list(videos.order_by("-id").values_list("id", flat=True))


def test_pages_walk_the_catalog_once_in_a_stable_order(catalog_db, api_client):
    first = api_client.get(VIDEOS, {"page_size": 7}).json()
    assert len(first["results"]) == 7 and first["previous"] is None
    walked = ids_of(api_client, VIDEOS, page_size=100)
    assert walked == expected(Video.objects.all())
    assert len(walked) == len(set(walked)) == Video.objects.count()
    # A page read again is the same page.
    assert api_client.get(first["next"]).json() == api_client.get(first["next"]).json()


def test_hashtag_filter(catalog_db, api_client):
    tag = Video.hashtags.through.objects.values("hashtag__name").annotate(n=Count("id")).order_by("-n")[0]
    want = expected(Video.objects.filter(hashtags__name=tag["hashtag__name"]))
    assert len(want) == tag["n"] > 1
    assert ids_of(api_client, VIDEOS, hashtag=tag["hashtag__name"], page_size=500) == want
    # '#' and case do not matter, as the importer stores names lower-case.
    assert ids_of(api_client, VIDEOS, hashtag="#" + tag["hashtag__name"].upper(), page_size=500) == want
    assert api_client.get(VIDEOS, {"hashtag": "no-such-tag-anywhere"}).json()["results"] == []


def test_creator_filter_by_handle_or_id(catalog_db, api_client):
    creator = Creator.objects.annotate(n=Count("videos")).order_by("-n", "id")[0]
    want = expected(creator.videos.all())
    assert len(want) > 1
    assert ids_of(api_client, VIDEOS, creator=creator.handle) == want
    assert ids_of(api_client, VIDEOS, creator="@" + creator.handle) == want
    assert ids_of(api_client, VIDEOS, creator=str(creator.pk)) == want
    body = api_client.get(VIDEOS, {"creator": creator.handle}).json()["results"][0]
    assert body["creator"] == creator.handle and body["creator_id"] == creator.pk


def test_language_filter(catalog_db, api_client):
    chosen = expected(Video.objects.all())[:5]
    Video.objects.filter(pk__in=chosen).update(language="pt")
    assert ids_of(api_client, VIDEOS, language="pt") == chosen
    assert {item["language"] for item in api_client.get(VIDEOS, {"language": "pt"}).json()["results"]} == {"pt"}


def test_min_followers_filter(catalog_db, api_client):
    # Give the creators distinct follower counts (whatever the source recorded).
    for rank, creator in enumerate(Creator.objects.order_by("id")):
        Creator.objects.filter(pk=creator.pk).update(follower_count=rank * 1000)
    floor = Creator.objects.count() // 2 * 1000
    want = expected(Video.objects.filter(creator__follower_count__gte=floor))
    assert 0 < len(want) < Video.objects.count()
    assert ids_of(api_client, VIDEOS, min_followers=floor, page_size=500) == want


def test_created_window_filter(catalog_db, api_client):
    dates = sorted(Video.objects.exclude(created_at=None).values_list("created_at", flat=True))
    after, before = dates[len(dates) // 4], dates[3 * len(dates) // 4]
    want = expected(Video.objects.filter(created_at__gte=after, created_at__lt=before))
    assert 0 < len(want) < Video.objects.count()
    got = ids_of(api_client, VIDEOS, created_after=after.isoformat(), created_before=before.isoformat(), page_size=500)
    assert got == want
    # A bare date is midnight UTC.
    day = datetime(after.year, after.month, after.day, tzinfo=timezone.utc)
    assert ids_of(api_client, VIDEOS, created_after=day.date().isoformat(), page_size=500) == expected(
        Video.objects.filter(created_at__gte=day))


def test_text_search_on_caption(catalog_db, api_client):
    Video.objects.filter(pk=expected(Video.objects.all())[3]).update(caption="Grandma learns the zyxwv dance")
    Video.objects.filter(pk=expected(Video.objects.all())[9]).update(caption="zyxwv challenge, part 2")
    marked = expected(Video.objects.filter(caption__icontains="zyxwv"))
    assert ids_of(api_client, VIDEOS, q="zyxwv") == marked and len(marked) == 2
    captions = {pk: Video.objects.get(pk=pk).caption.lower() for pk in marked}

    def marked_where(keep) -> list[int]:
        return [pk for pk in marked if keep(captions[pk])]

    assert ids_of(api_client, VIDEOS, q="ZYXWV dance") == marked_where(lambda caption: "dance" in caption)
    assert ids_of(api_client, VIDEOS, q='"zyxwv challenge"') == marked_where(lambda caption: "challenge" in caption)
    assert ids_of(api_client, VIDEOS, q="zyxwv -grandma") == marked_where(lambda caption: "grandma" not in caption)


def test_filters_combine(catalog_db, api_client):
    creator = Creator.objects.annotate(n=Count("videos")).order_by("-n", "id")[0]
    tag = creator.videos.values_list("hashtags__name", flat=True).exclude(hashtags__name=None).first()
    want = expected(Video.objects.filter(creator=creator, hashtags__name=tag))
    assert want
    assert ids_of(api_client, VIDEOS, creator=creator.handle, hashtag=tag) == want


@pytest.mark.parametrize("params, field", [
    ({"min_followers": "lots"}, "min_followers"),
    ({"min_followers": "-1"}, "min_followers"),
    ({"created_after": "yesterday"}, "created_after"),
    ({"created_after": "2020-06-01", "created_before": "2020-05-01"}, "created_before"),
    ({"page_size": "0"}, "page_size"),
    ({"page_size": "many"}, "page_size"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"hashtag": "#"}, "hashtag"),
    ({"q": "x" * 201}, "q"),
    ({"creator": "9" * 30}, "creator"),
])
def test_bad_filter_values_are_refused_with_the_field_named(catalog_db, api_client, params, field):
    response = api_client.get(VIDEOS, params)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and body["code"] and body["error"].startswith(field)
    assert "ETag" not in response and response["Cache-Control"] == "no-store"


def test_video_detail_and_unknown_ids(catalog_db, api_client):
    video = Video.objects.order_by("id").first()
    body = api_client.get(f"{VIDEOS}{video.pk}/").json()
    assert body["id"] == video.pk and body["external_id"] == video.external_id and body["creator_id"] == video.creator_id
    assert "embedding" not in body
    for unknown in (Video.objects.order_by("-id").first().pk + 1000, "abc", "9" * 30):
        response = api_client.get(f"{VIDEOS}{unknown}/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found" and set(response.json()) == {"error", "field", "code", "details"}


def test_creators_with_their_counts(catalog_db, api_client):
    creator = Creator.objects.annotate(n=Count("videos")).order_by("-n", "id")[0]
    body = api_client.get(f"/api/v1/creators/{creator.pk}/").json()
    assert body["catalog_video_count"] == creator.videos.count() > 1
    assert (body["follower_count"], body["following_count"], body["heart_count"], body["video_count"]) == (
        creator.follower_count, creator.following_count, creator.heart_count, creator.video_count)
    walked, response = [], api_client.get("/api/v1/creators/", {"page_size": 100})
    while True:
        page = response.json()
        walked += page["results"]
        if not page["next"]:
            break
        response = api_client.get(page["next"])
    assert [c["id"] for c in walked] == list(Creator.objects.order_by("-id").values_list("id", flat=True))
    assert sum(c["catalog_video_count"] for c in walked) == Video.objects.count()
    assert api_client.get("/api/v1/creators/0/").status_code == 404


def test_reads_carry_an_etag_and_answer_304_when_unchanged(catalog_db, api_client):
    video = Video.objects.order_by("id").first()
    for url in (f"{VIDEOS}?hashtag=fyp", f"{VIDEOS}{video.pk}/", f"/api/v1/creators/{video.creator_id}/"):
        response = api_client.get(url)
        assert response.status_code == 200
        etag = response["ETag"]
        assert etag and set(response["Cache-Control"].replace(" ", "").split(",")) == {"public", "max-age=300"}
        assert "Authorization" in response["Vary"]  # a shared cache keeps each key's copy apart
        again = api_client.get(url, HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
        assert api_client.get(url, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200
    # A change to what the body shows changes the tag.
    url = f"{VIDEOS}{video.pk}/"
    etag = api_client.get(url)["ETag"]
    Video.objects.filter(pk=video.pk).update(caption=video.caption + " (edited)")
    changed = api_client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_no_key_no_catalog(catalog_db, client):
    response = client.get(VIDEOS)
    assert response.status_code == 401 and "ETag" not in response


@pytest.mark.parametrize("filters, index", [
    ({"q": "dance"}, "catalog_video_caption_search"),
    ({"language": "en"}, "catalog_video_language"),
    ({"min_followers": 10**9}, "catalog_creator_followers"),
    ({"created_after": datetime(2030, 1, 1, tzinfo=timezone.utc)}, "created_at"),
    ({"hashtag": "fyp"}, "catalog_hashtag_name"),
])
def test_each_filter_can_be_served_by_an_index(catalog_db, filters, index):
    """The plan of each filter names its index once a sequential scan is ruled out (on a catalog
    this small the planner may rightly prefer one; at scale it must have the choice)."""
    from django.db import connection

    from catalog.filters import filter_videos

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = filter_videos(Video.objects.all(), filters).explain()
    assert index in plan, plan


def test_pages_and_details_are_the_catalog_serializers_json(catalog_db, api_client):
    """Pages and details are read as plain rows (``selectors.shown_videos``), not model
    instances: each video is what ``CatalogVideoSerializer`` gives for its row, in the page's
    order, a video without music, date or hashtags too; an unknown id is a 404 in our shape."""
    import json

    from rest_framework.renderers import JSONRenderer

    from catalog.serializers import CatalogVideoSerializer

    bare, untagged = Video.objects.order_by("-id").values_list("id", flat=True)[1:3]
    Video.objects.filter(pk=bare).update(music=None, created_at=None)
    Video.objects.get(pk=untagged).hashtags.clear()

    def serialized(videos):
        return json.loads(JSONRenderer().render(CatalogVideoSerializer(videos, many=True).data))

    page = api_client.get(VIDEOS, {"page_size": 40}).json()["results"]
    by_id = Video.objects.select_related("creator", "music").prefetch_related("hashtags").in_bulk(
        [item["id"] for item in page])
    assert [item["id"] for item in page] == sorted(by_id, reverse=True)
    assert page == serialized([by_id[item["id"]] for item in page])
    shown = {item["id"]: item for item in page}
    assert shown[bare]["music"] is None and shown[bare]["created_at"] is None and shown[untagged]["hashtags"] == []
    assert sum(len(item["hashtags"]) > 1 for item in page) > 5

    for pk in (bare, untagged, page[-1]["id"]):
        assert api_client.get(f"{VIDEOS}{pk}/").json() == serialized([by_id[pk]])[0]
    missing = api_client.get(f"{VIDEOS}{max(by_id) + 10_000}/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_creator_pages_and_details_are_the_catalog_serializers_json(catalog_db, api_client):
    """Creators too are read as plain rows (``selectors.shown_creators``), with their counts:
    each is what ``CatalogCreatorSerializer`` gives for its row, in the page's order."""
    import json

    from rest_framework.renderers import JSONRenderer

    from catalog.serializers import CatalogCreatorSerializer

    def serialized(creators):
        return json.loads(JSONRenderer().render(CatalogCreatorSerializer(creators, many=True).data))

    page = api_client.get("/api/v1/creators/", {"page_size": 60}).json()["results"]
    by_id = Creator.objects.annotate(catalog_video_count=Count("videos")).in_bulk([item["id"] for item in page])
    assert [item["id"] for item in page] == sorted(by_id, reverse=True)
    assert page == serialized([by_id[item["id"]] for item in page])
    assert any(item["catalog_video_count"] > 1 for item in page)
    prolific = max(by_id.values(), key=lambda creator: creator.catalog_video_count)
    assert api_client.get(f"/api/v1/creators/{prolific.pk}/").json() == serialized([prolific])[0]
    assert api_client.get(f"/api/v1/creators/{max(by_id) + 10_000}/").status_code == 404
