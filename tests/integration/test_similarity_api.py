""""More like this" for videos and creators on the real, embedded catalog: the item itself is
never among the results, results are sorted by cosine similarity and agree with exact search,
``limit`` is honoured and checked, unknown ids are 404 and rows without a vector 409, in the
API's error shape; answers carry an ETag (304 on If-None-Match); items are the catalog
serializers' JSON, and a list falls back to exact search when the index comes back short."""
import json

import numpy as np
import pytest
from django.db.models import Count
from rest_framework.renderers import JSONRenderer

from catalog.models import Creator, Video
from catalog.serializers import CatalogCreatorSerializer, CatalogVideoSerializer


def exact_neighbours(model, pk: int, k: int) -> list[int]:
    rows = list(model.objects.exclude(embedding=None).values_list("id", "embedding"))
    ids = np.array([row[0] for row in rows])
    vectors = np.array([row[1] for row in rows], dtype=np.float64)
    query = vectors[list(ids).index(pk)]
    similarity = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    order = [i for i in np.argsort(-similarity, kind="stable") if ids[i] != pk]
    return [int(ids[i]) for i in order[:k]], {int(ids[i]): float(similarity[i]) for i in order[:k]}


def test_similar_videos_exclude_the_video_and_are_sorted(catalog_db, api_client):
    video = Video.objects.exclude(embedding=None).order_by("id")[17]
    body = api_client.get(f"/api/v1/videos/{video.pk}/similar/").json()
    assert body["video_id"] == video.pk
    items = body["items"]
    assert len(items) == 10
    ids = [item["video"]["id"] for item in items]
    assert video.pk not in ids and len(set(ids)) == 10
    similarities = [item["similarity"] for item in items]
    assert similarities == sorted(similarities, reverse=True) and -1 <= similarities[-1] <= similarities[0] <= 1
    want, exact = exact_neighbours(Video, video.pk, 10)
    assert len(set(ids) & set(want)) >= 9  # HNSW at the feed's breadth: recall@10 ≥ 0.9 here
    for item in items:
        if item["video"]["id"] in exact:
            assert item["similarity"] == pytest.approx(exact[item["video"]["id"]], abs=1e-4)
    shown = items[0]["video"]
    assert {"caption", "creator", "creator_id", "hashtags", "stats"} <= set(shown)


def test_similar_videos_limit(catalog_db, api_client):
    video = Video.objects.exclude(embedding=None).order_by("id").first()
    assert len(api_client.get(f"/api/v1/videos/{video.pk}/similar/", {"limit": 3}).json()["items"]) == 3
    many = api_client.get(f"/api/v1/videos/{video.pk}/similar/", {"limit": 100}).json()["items"]
    assert len(many) == 100 and video.pk not in {item["video"]["id"] for item in many}
    for bad in ("0", "101", "ten"):
        response = api_client.get(f"/api/v1/videos/{video.pk}/similar/", {"limit": bad})
        assert response.status_code == 400 and response.json()["field"] == "limit"


def test_similar_creators_exclude_the_creator_and_are_sorted(catalog_db, api_client):
    creator = Creator.objects.exclude(embedding=None).order_by("id")[5]
    body = api_client.get(f"/api/v1/creators/{creator.pk}/similar/", {"limit": 20}).json()
    assert body["creator_id"] == creator.pk
    ids = [item["creator"]["id"] for item in body["items"]]
    assert len(ids) == 20 and creator.pk not in ids
    similarities = [item["similarity"] for item in body["items"]]
    assert similarities == sorted(similarities, reverse=True)
    want, exact = exact_neighbours(Creator, creator.pk, 20)
    assert len(set(ids) & set(want)) >= 18
    for item in body["items"]:
        if item["creator"]["id"] in exact:
            assert item["similarity"] == pytest.approx(exact[item["creator"]["id"]], abs=1e-4)
    assert "catalog_video_count" in body["items"][0]["creator"]


def test_unknown_ids_are_404_and_unembedded_409(catalog_db, api_client):
    for url in ("/api/v1/videos/{}/similar/", "/api/v1/creators/{}/similar/"):
        response = api_client.get(url.format(10**12))
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert api_client.get(url.format("nope")).status_code == 404
    video = Video.objects.exclude(embedding=None).order_by("id").first()
    Video.objects.filter(pk=video.pk).update(embedding=None)
    Creator.objects.filter(pk=video.creator_id).update(embedding=None)
    for url in (f"/api/v1/videos/{video.pk}/similar/", f"/api/v1/creators/{video.creator_id}/similar/"):
        response = api_client.get(url)
        assert response.status_code == 409
        body = response.json()
        assert body["code"] == "not_embedded" and "embedding" in body["error"] and "ETag" not in response
    # A video without a vector is never among another's similar ones.
    other = Video.objects.exclude(embedding=None).order_by("id").first()
    items = api_client.get(f"/api/v1/videos/{other.pk}/similar/", {"limit": 100}).json()["items"]
    assert video.pk not in {item["video"]["id"] for item in items}


def test_similar_reads_answer_304_when_unchanged(catalog_db, api_client):
    video = Video.objects.exclude(embedding=None).order_by("id").first()
    for url in (f"/api/v1/videos/{video.pk}/similar/?limit=5", f"/api/v1/creators/{video.creator_id}/similar/"):
        response = api_client.get(url)
        assert response.status_code == 200 and "max-age=300" in response["Cache-Control"]
        assert api_client.get(url, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def rendered(data) -> object:
    """``data`` as a client reads it: rendered by the API's JSON renderer, parsed back."""
    return json.loads(JSONRenderer().render(data))


def test_similar_items_are_the_catalogs_own_json(catalog_db, api_client):
    """The similar lists build their items without the serializers: each item is what the
    catalog's own serializer gives for that row, a video without music, date or hashtags too."""
    video = Video.objects.exclude(embedding=None).order_by("id")[40]
    url = f"/api/v1/videos/{video.pk}/similar/"
    bare, untagged, *_ = [item["video"]["id"] for item in api_client.get(url, {"limit": 5}).json()["items"]]
    Video.objects.filter(pk=bare).update(music=None, created_at=None)
    Video.objects.get(pk=untagged).hashtags.clear()

    items = api_client.get(url, {"limit": 100}).json()["items"]
    videos = Video.objects.select_related("creator", "music").prefetch_related("hashtags").in_bulk(
        [item["video"]["id"] for item in items])
    assert [item["video"] for item in items] == rendered(
        CatalogVideoSerializer([videos[item["video"]["id"]] for item in items], many=True).data)
    shown = {item["video"]["id"]: item["video"] for item in items}
    assert shown[bare]["music"] is None and shown[bare]["created_at"] is None and shown[untagged]["hashtags"] == []
    assert sum(len(item["video"]["hashtags"]) > 1 for item in items) > 10

    creator = Creator.objects.exclude(embedding=None).order_by("id")[40]
    items = api_client.get(f"/api/v1/creators/{creator.pk}/similar/", {"limit": 100}).json()["items"]
    creators = Creator.objects.annotate(catalog_video_count=Count("videos")).in_bulk(
        [item["creator"]["id"] for item in items])
    assert [item["creator"] for item in items] == rendered(
        CatalogCreatorSerializer([creators[item["creator"]["id"]] for item in items], many=True).data)


@pytest.mark.parametrize("model, url", [(Video, "/api/v1/videos/{}/similar/"),
                                        (Creator, "/api/v1/creators/{}/similar/")])
def test_a_list_is_short_only_if_the_catalog_is(catalog_db, api_client, model, url):
    """With most vectors gone, the HNSW scan finds few live rows among those it visits; the
    search is then repeated exactly, so the list holds every other embedded row, nearest first."""
    kept = list(model.objects.exclude(embedding=None).order_by("id").values_list("id", flat=True)[:30])
    model.objects.exclude(pk__in=kept).update(embedding=None)
    pk = kept[7]
    for limit in (20, 100):
        items = api_client.get(url.format(pk), {"limit": limit}).json()["items"]
        key = "video" if model is Video else "creator"
        want, exact = exact_neighbours(model, pk, 29)
        ids = [item[key]["id"] for item in items]
        assert len(ids) == min(limit, 29) and set(ids) <= set(want) and pk not in ids
        similarities = [item["similarity"] for item in items]
        assert similarities == sorted(similarities, reverse=True)
        assert similarities == pytest.approx([exact[i] for i in ids], abs=1e-4)
        # Nearest first: none left out is nearer than the last one in.
        assert all(exact[i] <= similarities[-1] + 1e-4 for i in set(want) - set(ids))


def test_similar_lists_run_prepared_on_one_generic_plan(catalog_db):
    """A similar list's statement is prepared on the connection and, past PostgreSQL's first five
    custom plans, runs on one generic plan instead of being planned for every request (planning
    was about half of its CPU: ``tokfeed.rows.prepared_rows``)."""
    from django.db import connection

    from catalog.selectors import similar_videos

    videos = list(Video.objects.exclude(embedding=None).order_by("id").values_list("id", flat=True)[:12])
    lists = [similar_videos(pk, 7) for pk in videos]  # a limit no other test asks for: its own statement
    assert all(len(items) == 7 for items in lists)
    with connection.cursor() as cursor:
        cursor.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements "
                       "WHERE statement LIKE %s AND statement LIKE %s", ["%catalog_video_hashtags%", "%LIMIT 8) AS near%"])
        [(generic, custom)] = cursor.fetchall()
    assert custom == 5 and generic == len(videos) - 5


def test_after_an_import_a_similar_list_reads_hashtags_by_their_key(catalog_db):
    """Right after ``import_trending`` and ``embed`` (as ``make run`` and the test database do),
    the planner has statistics for every table the import filled, so a similar list reads each
    neighbour's hashtags through the primary key. Without them it scanned the whole hashtag table
    once per neighbour (2 220 rows, ten times a list): 2.6 ms of PostgreSQL a list against 0.8,
    until autovacuum came round, which on the embedded server it did not within minutes."""
    from django.db import connection

    from catalog.selectors import _SIMILAR_VIDEOS

    video = Video.objects.exclude(embedding=None).order_by("id").values_list("id", flat=True)[5]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + _SIMILAR_VIDEOS.format(search_k=11, limit=10), [video])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using catalog_hashtag_pkey" in plan, plan
    assert "Seq Scan on catalog_hashtag " not in plan, plan


def test_a_prepared_read_is_captured_with_its_sql(catalog_db):
    """Past PostgreSQL's first runs a prepared statement is sent by name, and Django logged its
    SQL as None (captured queries, DEBUG): it is logged with its text and values."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from catalog.selectors import similar_videos

    pk = Video.objects.exclude(embedding=None).order_by("id").values_list("id", flat=True)[3]
    for _ in range(8):  # past psycopg's prepare threshold
        with CaptureQueriesContext(connection) as queries:
            assert len(similar_videos(pk, 6)) == 6
    [query] = queries.captured_queries
    assert "catalog_video_hashtags" in query["sql"] and f"WHERE id = {pk})" in query["sql"]
