"""Partner ingestion (``POST /api/v1/ingest/videos/``, ``GET /api/v1/ingest/jobs/{id}/``) on the
real, embedded catalog in PostgreSQL with the real model: a batch's bad records are listed by
index and field while the good ones are stored and embedded; the same batch sent twice is one
job, and a job over records already stored creates and embeds nothing; ingested videos are found
by similarity and recall; the job's progress and who may see it; body errors in the one shape.

Celery runs eagerly here, and the test's transaction never commits: the job's task runs when
``django_capture_on_commit_callbacks(execute=True)`` runs the callbacks the request left.
"""
import copy
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from catalog.importers import RecordError, parse_record
from catalog.models import Creator, IngestJob, Topic, Video
from tests.conftest import TRENDING, partner_client

URL = "/api/v1/ingest/videos/"
BAKING = [
    "my sourdough starter finally doubled overnight, time to bake bread",
    "shaping a sourdough loaf and scoring the crust before it goes into the oven",
    "crumb shot of my homemade sourdough bread, open and airy",
    "feeding my sourdough starter with rye flour every morning for better bread",
]


def baking_record(number: int, caption: str) -> dict:
    return {
        "id": f"ingest-bake-{number}", "text": caption, "createTime": 1700000000 + number,
        "authorMeta": {"id": "ingest-baker", "name": "breadbaker", "nickName": "Bread Baker",
                       "signature": "home baker: sourdough, bread and pastry", "verified": False},
        "musicMeta": {"musicId": "ingest-music-1", "musicName": "Kitchen morning", "musicAuthor": "Breadbaker"},
        "hashtags": [{"id": "", "name": "sourdough"}, {"name": "baking"}], "videoMeta": {"duration": 30},
        "diggCount": 120 + number, "shareCount": 3, "playCount": 2400, "commentCount": 9,
        "webVideoUrl": f"https://www.tiktok.com/@breadbaker/video/{number}",
    }


def trending_records(count: int) -> list[dict]:
    return json.loads(TRENDING.read_text())["collector"][:count]


def send(client, body, status=202):
    response = client.post(URL, body, format="json")
    assert response.status_code == status, response.json()
    return response


def ingest(client, capture, body) -> dict:
    """Send a batch and run its job (the on-commit task); returns the job's final state."""
    with capture(execute=True):
        accepted = send(client, body)
    job = client.get(accepted["Location"])
    assert job.status_code == 200, job.json()
    return job.json()


def vectors_of(external_ids) -> dict:
    return {external_id: (str(embedding), embedded_at) for external_id, embedding, embedded_at in
            Video.objects.filter(external_id__in=external_ids).values_list("external_id", "embedding", "embedded_at")}


def row_counts() -> tuple:
    return (Video.objects.count(), Creator.objects.count(), Video.hashtags.through.objects.count(),
            IngestJob.objects.count())


def test_bad_records_are_listed_by_index_and_field_and_the_good_ones_stored(
        catalog_db, api_client, django_capture_on_commit_callbacks):
    good = [baking_record(0, BAKING[0]), baking_record(1, BAKING[1])]
    no_author_id = dict(baking_record(2, BAKING[2]), authorMeta={"name": "someone"})
    negative_likes = dict(baking_record(3, BAKING[3]), diggCount=-4)
    garbage_time = dict(baking_record(4, "a caption"), createTime="yesterday")
    batch = [good[0], no_author_id, negative_likes, garbage_time, "not a record", good[1]]

    with django_capture_on_commit_callbacks(execute=True):
        accepted = send(api_client, {"videos": batch}).json()
    assert accepted["status"] == "queued"
    assert accepted["counts"]["received"] == 6 and accepted["counts"]["valid"] == 2
    assert [(f["index"], f["field"]) for f in accepted["failures"]] == [
        (1, "authorMeta.id"), (2, "diggCount"), (3, "createTime"), (4, None)]
    assert accepted["failures"][0]["message"] == "missing authorMeta.'id'"
    assert accepted["failures"][3]["message"] == "expected an object, got str"

    job = api_client.get(accepted["job"]).json()
    assert job["status"] == "done" and job["counts"]["created"] == 2 and job["counts"]["failed"] == 4
    assert job["failures"] == accepted["failures"]
    stored = set(Video.objects.filter(external_id__startswith="ingest-bake-").values_list("external_id", flat=True))
    assert stored == {"ingest-bake-0", "ingest-bake-1"}


@pytest.mark.parametrize("record, field", [
    ({"id": "1", "authorMeta": {"id": "2"}}, "authorMeta.name"),
    ({"id": "1", "authorMeta": "me"}, "authorMeta"),
    ({"authorMeta": {"id": "2", "name": "x"}}, "id"),
    ({"id": "1" * 65, "authorMeta": {"id": "2", "name": "x"}}, "id"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x", "fans": -1}}, "authorMeta.fans"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x"}, "playCount": math.nan}, "playCount"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x"}, "shareCount": math.inf}, "shareCount"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x"}, "createTime": 1e300}, "createTime"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x"}, "videoMeta": {"duration": 2**40}}, "videoMeta.duration"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x"}, "hashtags": [{"name": "a"}, {"name": "b"}, {"id": "3"}]},
     "hashtags.2"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x"}, "hashtags": [{"name": "a" * 201}]}, "hashtags.0.name"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x"}, "musicMeta": {"musicName": ["x"]}}, "musicMeta.musicName"),
    ({"id": "1", "authorMeta": {"id": "2", "name": "x"}, "covers": {"default": "h" * 2001}}, "covers.default"),
])
def test_a_record_error_names_its_field(record, field):
    with pytest.raises(RecordError) as error:
        parse_record(record)
    assert error.value.field == field


def test_music_without_an_id_and_a_long_name_still_stores(catalog_db, api_client, django_capture_on_commit_callbacks):
    record = dict(baking_record(7, BAKING[0]), musicMeta={"musicName": "n" * 300, "musicAuthor": "a" * 300})
    job = ingest(api_client, django_capture_on_commit_callbacks, {"videos": [record]})
    assert job["status"] == "done" and job["counts"]["created"] == 1 and job["failures"] == []
    assert Video.objects.get(external_id="ingest-bake-7").music.name == "n" * 300


def test_the_same_batch_twice_is_one_job_and_changes_nothing(
        catalog_db, api_client, django_capture_on_commit_callbacks):
    batch = [baking_record(n, caption) for n, caption in enumerate(BAKING)]
    first = ingest(api_client, django_capture_on_commit_callbacks, {"videos": batch})
    assert first["status"] == "done" and first["counts"]["created"] == 4 and first["counts"]["videos_embedded"] == 4
    before = (row_counts(), vectors_of(r["id"] for r in batch), IngestJob.objects.get().updated_at)

    # The same records, their keys in another order and under the export's name: the same batch.
    reordered = [dict(reversed(list(copy.deepcopy(record).items()))) for record in batch]
    for body in ({"videos": batch}, {"collector": reordered}):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            again = send(api_client, body)
        assert callbacks == []  # nothing queued
        assert again["Location"] == first["job"] and again.json() == first

    assert (row_counts(), vectors_of(r["id"] for r in batch), IngestJob.objects.get().updated_at) == before


def test_a_new_job_over_stored_records_creates_nothing_and_embeds_nothing(
        catalog_db, api_client, django_capture_on_commit_callbacks):
    records = trending_records(5)  # the shared catalog holds them, embedded
    external_ids = [record["id"] for record in records]
    before = (row_counts()[:3], vectors_of(external_ids),
              dict(Creator.objects.values_list("id", "embedded_at")))

    job = ingest(api_client, django_capture_on_commit_callbacks, {"collector": records})
    other_partner = ingest(partner_client("another partner"), django_capture_on_commit_callbacks,
                           {"collector": records})

    assert job["id"] != other_partner["id"]
    for done in (job, other_partner):
        assert done["status"] == "done"
        assert done["counts"] == {
            "received": 5, "valid": 5, "failed": 0, "created": 0, "updated": 5, "videos_embedded": 0,
            "creators_embedded": 0}
        assert done["progress"]["embed_videos"] == {"done": 0, "total": 0}
        assert done["progress"]["embed_creators"] == {"done": 0, "total": 0}
    assert (row_counts()[:3], vectors_of(external_ids),
            dict(Creator.objects.values_list("id", "embedded_at"))) == before


def test_ingested_videos_are_embedded_and_found_by_similarity_and_recall(
        catalog_db, api_client, django_capture_on_commit_callbacks):
    batch = [baking_record(n, caption) for n, caption in enumerate(BAKING)]
    job = ingest(api_client, django_capture_on_commit_callbacks, {"videos": batch})
    assert job["counts"]["videos_embedded"] == 4 and job["counts"]["creators_embedded"] == 1

    baked = dict(Video.objects.filter(external_id__startswith="ingest-bake-").values_list("external_id", "id"))
    assert not Video.objects.filter(pk__in=baked.values(), embedding__isnull=True).exists()
    baker = Creator.objects.get(external_id="ingest-baker")
    assert baker.embedding is not None and baker.handle == "breadbaker"
    # Each joins its nearest topic: topic-drawn batches show it before the catalog is clustered again.
    topics = dict(Topic.objects.values_list("number", "centroid"))
    assert topics
    for video in Video.objects.filter(pk__in=baked.values()):
        assert video.topic == max(topics, key=lambda number: float(np.dot(topics[number], video.embedding)))
    assert all(t.size == Video.objects.filter(topic=t.number).count() for t in Topic.objects.all())

    similar = api_client.get(f"/api/v1/videos/{baked['ingest-bake-0']}/similar/", {"limit": 3})
    assert similar.status_code == 200, similar.json()
    assert {item["video"]["id"] for item in similar.json()["items"]} == set(baked.values()) - {baked["ingest-bake-0"]}

    recalled = api_client.post("/api/v1/recommendations/", {"interest_texts": ["baking sourdough bread at home"],
                                                            "limit": 10}, format="json")
    assert recalled.status_code == 200, recalled.json()
    assert set(baked.values()) <= {item["video"] for item in recalled.json()["items"]}


def test_job_goes_from_queued_to_done_and_only_its_partner_sees_it(
        catalog_db, api_client, client, django_capture_on_commit_callbacks):
    batch = [baking_record(n, caption) for n, caption in enumerate(BAKING[:3])]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = send(api_client, {"videos": batch})
    accepted = response.json()
    assert accepted["status"] == "queued" and response["Location"] == accepted["job"]
    assert accepted["job"] == f"http://testserver/api/v1/ingest/jobs/{accepted['id']}/"
    assert accepted["progress"] == {"store": {"done": 0, "total": 3}, "embed_videos": {"done": 0, "total": None},
                                    "embed_creators": {"done": 0, "total": None}}
    assert api_client.get(accepted["job"]).json()["status"] == "queued"

    for callback in callbacks:  # the commit
        callback()
    job = api_client.get(accepted["job"])
    assert job["Cache-Control"] == "no-store"
    job = job.json()
    assert job["status"] == "done" and job["started_at"] and job["finished_at"]
    assert job["counts"] == {"received": 3, "valid": 3, "failed": 0, "created": 3, "updated": 0,
                             "videos_embedded": 3, "creators_embedded": 1}
    assert job["progress"] == {"store": {"done": 3, "total": 3}, "embed_videos": {"done": 3, "total": 3},
                               "embed_creators": {"done": 1, "total": 1}}

    stranger = partner_client("someone else").get(accepted["job"])
    assert stranger.status_code == 404 and stranger.json()["code"] == "not_found"
    for missing in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        answer = api_client.get(f"/api/v1/ingest/jobs/{missing}/")
        assert answer.status_code == 404 and answer.json()["code"] == "not_found"

    for unauthenticated in (client.get(accepted["job"]), client.post(URL, {"videos": batch},
                                                                        content_type="application/json")):
        assert unauthenticated.status_code == 401 and unauthenticated.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("body, field, code", [
    ([{"id": "1"}], None, "invalid"),
    ("just text", None, "invalid"),
    ({}, "videos", "required"),
    ({"records": []}, "videos", "required"),
    ({"videos": {"id": "1"}}, "videos", "not_a_list"),
    ({"videos": []}, "videos", "empty"),
    ({"collector": []}, "collector", "empty"),
    ({"videos": [{}], "collector": [{}]}, "collector", "invalid"),
    ({"videos": [{}] * 4}, "videos", "max_length"),
    ({"collector": [{}] * 4}, "collector", "max_length"),
])
def test_a_body_that_is_no_batch_is_refused_with_its_field_and_code(catalog_db, api_client, settings, body, field, code):
    settings.INGEST_MAX_RECORDS = 3
    answer = send(api_client, body, status=400).json()
    assert (answer["field"], answer["code"]) == (field, code), answer
    assert answer["error"] and not IngestJob.objects.exists()


def test_a_body_over_the_ingest_limit_is_refused_but_one_over_the_api_limit_is_not(catalog_db, api_client, settings):
    batch = [baking_record(n, BAKING[n % 4] + " " + "x" * 2000) for n in range(40)]
    assert len(json.dumps({"videos": batch})) > settings.API_MAX_BODY_BYTES
    assert send(api_client, {"videos": batch}).json()["counts"]["valid"] == 40
    settings.INGEST_MAX_BODY_BYTES = 64 * 1024
    assert send(api_client, {"videos": batch[::-1]}, status=413).json()["code"] == "too_large"


def test_a_failed_job_says_so_and_the_same_batch_sent_again_runs_it_again(
        catalog_db, api_client, settings, django_capture_on_commit_callbacks):
    batch = [baking_record(n, caption) for n, caption in enumerate(BAKING[:2])]
    configured = settings.EMBEDDING_MODEL
    settings.EMBEDDING_MODEL = "/nonexistent/model"  # a deployment's mistake: embedding cannot run
    failed = ingest(api_client, django_capture_on_commit_callbacks, {"videos": batch})
    assert failed["status"] == "failed" and "EmbeddingModelError" in failed["error"]
    assert failed["counts"]["created"] == 2 and failed["counts"]["videos_embedded"] == 0

    settings.EMBEDDING_MODEL = configured
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        requeued = send(api_client, {"videos": batch}).json()
    assert requeued["id"] == failed["id"] and requeued["status"] == "queued" and requeued["error"] == ""
    assert requeued["progress"]["embed_videos"] == {"done": 0, "total": None}
    for callback in callbacks:  # the commit
        callback()
    retried = api_client.get(requeued["job"]).json()
    assert retried["id"] == failed["id"] and retried["status"] == "done" and retried["error"] == ""
    assert retried["counts"] == {"received": 2, "valid": 2, "failed": 0, "created": 0, "updated": 2,
                                 "videos_embedded": 2, "creators_embedded": 1}
    assert IngestJob.objects.count() == 1


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
#: Records of the right outline with anything for values: they reach every check of the parser.
RECORDS = JSON | st.fixed_dictionaries(
    {"id": JSON_SCALARS, "authorMeta": JSON | st.fixed_dictionaries(
        {"id": JSON_SCALARS, "name": JSON_SCALARS},
        optional={key: JSON for key in ("nickName", "signature", "avatar", "verified", "fans", "heart")})},
    optional={
        **{key: JSON for key in ("text", "createTime", "musicMeta", "covers", "videoMeta", "playCount",
                                 "diggCount", "webVideoUrl")},
        "hashtags": JSON | st.lists(JSON | st.fixed_dictionaries({"name": JSON_SCALARS}, optional={"id": JSON}),
                                    max_size=4),
    },
)


@hypothesis_settings(max_examples=500, deadline=None, derandomize=True)
@given(RECORDS)
def test_any_json_is_a_record_or_a_record_error_never_a_crash(record):
    try:
        parse_record(record)
    except RecordError as error:
        assert str(error) and (error.field is None or isinstance(error.field, str))


def test_ingestion_needs_the_ingest_scope(catalog_db):
    # New keys are read + sessions: adding to the catalog is given on purpose.
    reader = partner_client("reader", ("read", "sessions"))
    jobs_before = IngestJob.objects.count()
    refused = reader.post(URL, {"videos": trending_records(1)}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert "ingest" in refused.json()["error"]
    assert IngestJob.objects.count() == jobs_before
    job = reader.get("/api/v1/ingest/jobs/0b5e5c1e-4a47-4d7e-9b1c-2f1f0e6a9d31/")
    assert job.status_code == 403 and job.json()["code"] == "insufficient_scope"
