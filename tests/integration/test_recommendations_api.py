"""``POST /api/v1/recommendations/`` on the real, embedded catalog: each query kind, each filter
and rule, the stages' counts, a filter that keeps 1 % of the catalog, and bad input."""
import datetime
import uuid

import pytest
from django.db.models import Count, F
from django.utils import timezone

from catalog.models import Creator, Video
from tests.conftest import partner_client

URL = "/api/v1/recommendations/"
FITNESS = ["gym workouts and lifting weights"]


def recommend(client, status=200, **body):
    response = client.post(URL, body, format="json")
    assert response.status_code == status, response.json()
    return response.json()


def ids(page):
    return [item["video"] for item in page["items"]]


def assert_counts_add_up(page):
    stages = page["stages"]
    assert stages[0]["name"] == "recall" and stages[0]["received"] == 0
    for before, after in zip(stages, stages[1:]):
        assert after["received"] == before["kept"]
    assert stages[-1]["name"] == "top" and stages[-1]["kept"] == len(page["items"])


def test_interest_texts_page_with_ranks_scores_parts_and_stages(catalog_db, api_client):
    page = recommend(api_client, interest_texts=FITNESS)
    assert len(page["items"]) == 10
    assert [item["rank"] for item in page["items"]] == list(range(1, 11))
    scores = [item["score"] for item in page["items"]]
    assert scores == sorted(scores, reverse=True)
    assert set(page["items"][0]["parts"]) == {"similarity", "creator_affinity", "popularity", "freshness", "negative"}
    assert [s["name"] for s in page["stages"]] == ["recall", "rerank", "rules", "top"]
    assert_counts_add_up(page)


def test_video_ids_exclude_themselves_and_negatives_push_neighbours_down(catalog_db, api_client):
    liked = ids(recommend(api_client, interest_texts=FITNESS, limit=2))
    page = recommend(api_client, video_ids=liked, limit=20)
    assert len(page["items"]) == 20 and not set(liked) & set(ids(page))
    disliked = ids(page)[0]
    penalised = recommend(api_client, video_ids=liked, negative_video_ids=[disliked], limit=20)
    assert disliked not in ids(penalised)
    assert any(item["parts"]["negative"] > 0.1 for item in penalised["items"])
    assert ids(penalised) != ids(page)[1:]


def test_each_filter_holds(catalog_db, api_client):
    Creator.objects.update(follower_count=F("id") * 1000)  # distinct counts, whatever the import left
    base = recommend(api_client, interest_texts=FITNESS, limit=30)
    videos = Video.objects.select_related("creator").in_bulk(ids(base))

    floor = sorted(v.creator.follower_count for v in videos.values())[15]
    assert floor > min(v.creator.follower_count for v in videos.values())
    page = recommend(api_client, interest_texts=FITNESS, limit=30, filters={"min_followers": floor})
    assert all(v.creator.follower_count >= floor for v in Video.objects.select_related("creator").filter(pk__in=ids(page)))
    assert len(page["items"]) == 30 and ids(page) != ids(base)

    blocked = list({videos[i].creator_id for i in ids(base)[:3]})
    page = recommend(api_client, interest_texts=FITNESS, limit=30, filters={"blocked_creators": blocked})
    assert len(page["items"]) == 30
    assert not Video.objects.filter(pk__in=ids(page), creator_id__in=blocked).exists()

    tag = Video.objects.get(pk=ids(base)[0]).hashtags.first().name
    page = recommend(api_client, interest_texts=FITNESS, limit=30, filters={"blocked_hashtags": ["#" + tag.upper()]})
    assert len(page["items"]) == 30 and not Video.objects.filter(pk__in=ids(page), hashtags__name=tag).exists()

    recent = Video.objects.order_by("-created_at").values_list("created_at", flat=True)[50]
    days = (timezone.now() - recent).days + 1
    page = recommend(api_client, interest_texts=FITNESS, limit=30, filters={"fresh_within_days": days})
    cutoff = timezone.now() - datetime.timedelta(days=days)
    assert len(page["items"]) == 30
    assert all(v.created_at >= cutoff for v in Video.objects.filter(pk__in=ids(page)))
    assert_counts_add_up(page)


def test_a_filter_keeping_one_percent_of_the_catalog_still_fills_the_page(catalog_db, api_client):
    # Ten videos in a language (1 % of the real catalog): least similar to the query first, so
    # the approximate recall of the nearest 200 holds few or none of them.
    order = ids(recommend(api_client, interest_texts=FITNESS, limit=100))
    far = Video.objects.exclude(pk__in=order).order_by("id")[:7]
    chosen = list(order[:3]) + [v.pk for v in far]
    Video.objects.filter(pk__in=chosen).update(language="xx")
    page = recommend(api_client, interest_texts=FITNESS, limit=10, filters={"language": "XX"})
    assert sorted(ids(page)) == sorted(chosen)
    assert [s["name"] for s in page["stages"]][:3] == ["recall", "filter", "recall_exact"]
    assert_counts_add_up(page)


def test_creator_quota_and_sponsored_slots(catalog_db, api_client):
    busiest = Creator.objects.annotate(n=Count("videos")).order_by("-n").first()
    liked = list(busiest.videos.values_list("id", flat=True)[:2])
    page = recommend(api_client, video_ids=liked, limit=30)
    creators = dict(Video.objects.filter(pk__in=ids(page)).values_list("id", "creator_id"))
    assert max(list(creators.values()).count(c) for c in set(creators.values())) > 1
    quota = recommend(api_client, video_ids=liked, limit=30, rules={"creator_quota": 1})
    quota_creators = list(Video.objects.filter(pk__in=ids(quota)).values_list("creator_id", flat=True))
    assert len(quota_creators) == len(set(quota_creators)) == 30

    sponsored = [Video.objects.exclude(pk__in=ids(page)).first().pk, ids(page)[5]]
    page = recommend(api_client, video_ids=liked, limit=10,
                     rules={"sponsored": [{"video": sponsored[0], "position": 1}, {"video": sponsored[1], "position": 3}]})
    assert ids(page)[0] == sponsored[0] and ids(page)[2] == sponsored[1] and len(set(ids(page))) == 10
    assert page["items"][0]["source"] == "sponsored" and page["items"][0]["score"] is None


def test_a_session_is_its_partners_alone(catalog_db, api_client):
    session = api_client.post("/api/v1/sessions/", {"algorithm": "seed-default"}, format="json").json()
    served = api_client.post(f"/api/v1/sessions/{session['id']}/batch/").json()["items"]
    no_signal = recommend(api_client, status=400, session=session["id"])
    assert no_signal["field"] == "session" and no_signal["code"] == "no_signals"
    api_client.post(f"/api/v1/sessions/{session['id']}/signals/",
                    {"video": served[0]["id"], "event_id": str(uuid.uuid4()), "watched_ms": 16000}, format="json")
    page = recommend(api_client, session=session["id"])
    assert len(page["items"]) == 10 and not {item["id"] for item in served} & set(ids(page))

    other = partner_client("another-partner")
    response = recommend(other, status=404, session=session["id"])
    assert response["code"] == "not_found" and response["field"] == "session"
    assert recommend(api_client, status=404, session=str(uuid.uuid4()))["code"] == "not_found"


@pytest.mark.parametrize("body, field", [
    ({}, "interest_texts"),
    ({"interest_texts": FITNESS, "video_ids": [1]}, "video_ids"),
    ({"video_ids": [1], "session": str(uuid.uuid4())}, "session"),
    ({"interest_texts": []}, "interest_texts"),
    ({"interest_texts": ["  "]}, "interest_texts.0"),
    # An item of a list is named by its index (the first's was once dropped: "video_ids").
    ({"video_ids": ["1"]}, "video_ids.0"),
    ({"video_ids": [1, "2"]}, "video_ids.1"),
    ({"video_ids": [10**12]}, "video_ids"),
    ({"interest_texts": FITNESS, "negative_video_ids": [1]}, "negative_video_ids"),
    ({"interest_texts": FITNESS, "limit": 101}, "limit"),
    ({"interest_texts": FITNESS, "limit": "5"}, "limit"),
    ({"interest_texts": FITNESS, "filters": {"min_followers": -1}}, "filters.min_followers"),
    ({"interest_texts": FITNESS, "rules": {"creator_quota": 0}}, "rules.creator_quota"),
    ({"interest_texts": FITNESS, "rules": {"sponsored": [{"video": 10**12, "position": 1}]}}, "rules.sponsored"),
    ({"interest_texts": FITNESS, "filters": {"blocked_creators": [1, "x"]}}, "filters.blocked_creators.1"),
    ({"interest_texts": FITNESS, "rules": {"sponsored": [{"video": 1, "position": 0}]}}, "rules.sponsored.0.position"),
    # (The first item, valid, once made the error "{}" on "rules.sponsored".)
    ({"interest_texts": FITNESS, "rules": {"sponsored": [{"video": 1, "position": 1}, {"video": 2, "position": 0}]}},
     "rules.sponsored.1.position"),
])
def test_bad_input_gets_the_one_error_shape(catalog_db, api_client, body, field):
    response = recommend(api_client, status=400, **body)
    assert set(response) == {"error", "field", "code", "details"}
    assert response["field"] == field, response
    assert not response["error"].endswith("{}"), response


def test_the_endpoint_is_in_the_schema(catalog_db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/recommendations/"]["post"]
    assert {"200", "400", "404"} <= set(operation["responses"])
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
    assert operation["requestBody"]["content"]["application/json"].get("examples")
    assert {"interest_texts", "video_ids", "negative_video_ids", "session", "filters", "rules", "limit"} <= set(body)
