"""Cold start on the real catalog and model: the job keeps each profile bucket's centroid of
its top engagers and the global centroid of engaged content, and a new session starts from the
most specific one it has (``feed.cold_start``)."""
import uuid

import numpy as np
import pytest
from django.conf import settings

from catalog.embedding import encode
from catalog.models import Video
from feed import services, tasks
from feed.cold_start import GLOBAL_KEY
from feed.models import BucketCentroid, Signal
from tests.integration.test_biased_start import nearest_ids

COOKING, FOOTBALL = "cooking food recipe in the kitchen", "football soccer goal"
IT_FOOD = {"country": "IT", "interests": ["food"]}


def text_vector(text):
    return encode([text], model_name=settings.EMBEDDING_MODEL)[0]


def engaged_session(profile, videos):
    session = services.start_session(bucket={"profile": profile} if profile else None)
    for video in videos:
        Signal.objects.create(session=session, video_id=video, type="HIGH_ATTN", watched_ms=20000,
                              event_id=uuid.uuid4(), state_before="explore", state_after="focus")
    return session


@pytest.fixture
def engagement(catalog_db):
    cooking = sorted(nearest_ids(text_vector(COOKING), 12))
    football = sorted(nearest_ids(text_vector(FOOTBALL), 12))
    for count in (4, 6, 8):  # three Italian food lovers
        engaged_session(IT_FOOD, cooking[:count])
    for count in (3, 5):  # two British football fans
        engaged_session({"country": "GB", "app_version": "3.1"}, football[:count])
    engaged_session({"country": "ES"}, cooking[:2])  # one engager: no bucket of its own
    engaged_session(None, football[:2])  # no bucket: counts for the global centroid only
    return cooking, football


def test_the_job_keeps_each_buckets_centroid_and_the_global_one(engagement):
    cooking, football = engagement
    stored = tasks.refresh_bucket_centroids.apply().get()

    assert stored == {"country=IT|interests=food": 3, "country=IT": 3, "interests=food": 3,
                      "country=GB|app=3": 2, "country=GB": 2, "app=3": 2, GLOBAL_KEY: 7}
    italy = np.asarray(BucketCentroid.objects.get(key="country=IT").centroid)
    assert italy @ text_vector(COOKING) > italy @ text_vector(FOOTBALL)
    # Idempotent; a bucket that lost its engagers loses its row.
    Signal.objects.filter(session__bucket__profile__country="GB").delete()
    assert "country=GB" not in tasks.refresh_bucket_centroids.apply().get()
    assert not BucketCentroid.objects.filter(key__startswith="country=GB").exists()


def test_a_new_session_starts_from_its_most_specific_bucket_else_interests_else_global(engagement):
    cooking, _ = engagement
    tasks.refresh_bucket_centroids.apply().get()
    centroid = {row.key: np.asarray(row.centroid) for row in BucketCentroid.objects.all()}

    def bias(profile=None):
        return np.asarray(services.start_session(bucket={"profile": profile} if profile else None).bias_vector)

    assert bias({"country": "IT", "app_version": "9.0", "interests": ["food"]}) == pytest.approx(
        centroid["country=IT|interests=food"], abs=1e-6)
    assert bias({"country": "IT"}) == pytest.approx(centroid["country=IT"], abs=1e-6)
    assert bias({"country": "FR", "interests": ["Football"]}) == pytest.approx(text_vector("football"), abs=1e-5)
    assert bias({"country": "FR"}) == pytest.approx(centroid[GLOBAL_KEY], abs=1e-6)
    assert bias() == pytest.approx(centroid[GLOBAL_KEY], abs=1e-6)

    # And it visibly starts there: the first batch of an Italian food lover is near cooking.
    near = nearest_ids(centroid["country=IT"], 40)
    batch = services.next_batch(services.start_session(bucket={"profile": {"country": "IT"}}).id)
    assert sum(item.video.id in near for item in batch.items) >= len(batch.items) // 2


def test_before_any_engagement_a_session_starts_without_a_bias(catalog_db):
    assert services.start_session().bias_vector is None
    assert services.start_session(bucket={"profile": {"country": "IT"}}).bias_vector is None


def test_a_bad_profile_is_refused_by_the_api(catalog_db, api_client):
    response = api_client.post("/api/v1/sessions/", {"bucket": {"profile": {"country": "ITA"}}}, format="json")
    assert response.status_code == 400 and response.json()["field"].startswith("bucket.profile")
    created = api_client.post("/api/v1/sessions/", {"bucket": {"profile": {"interests": ["food"]}}}, format="json")
    assert created.status_code == 201, created.json()


def test_new_sessions_read_the_global_centroid_once_and_a_refresh_applies_at_once(engagement):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert services.start_session().bias_vector is None  # nothing stored yet (and that is remembered)
    tasks.refresh_bucket_centroids.apply().get()  # this process wrote it: it forgets what it had
    stored = np.asarray(BucketCentroid.objects.get(key=GLOBAL_KEY).centroid)
    with CaptureQueriesContext(connection) as queries:
        biases = [services.start_session().bias_vector for _ in range(3)]
    assert all(np.asarray(bias) == pytest.approx(stored, abs=1e-6) for bias in biases)
    assert sum('"feed_bucketcentroid"' in q["sql"] for q in queries.captured_queries) == 1
