"""Interest and creator vectors on the real model and database: the recommendations endpoint
says what its query pooled (count, thin), a commenter's last comments are a query, and a
creator's vector leans to its newest posts when a half-life is set."""
import datetime

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from catalog import embedding_jobs
from catalog.models import Creator, Video
from tests.integration.test_hostile_input import assert_refused
from tests.integration.test_recommendations_api import URL, ids, recommend
from tests.integration.test_tikliveapi_import import FIXTURES

VIC_COMMENTS = ["I made this pasta tonight, the dough was perfect",
                "Garlic butter anything is the best weeknight dinner"]


def test_the_answer_says_how_many_texts_or_videos_the_query_pools(catalog_db, api_client):
    assert recommend(api_client, interest_texts=["street food", "home workouts"], limit=3)["interest"] == {
        "count": 2, "thin": True}
    videos = list(Video.objects.filter(embedding__isnull=False).order_by("id").values_list("id", flat=True)[:20])
    assert recommend(api_client, video_ids=videos, limit=3)["interest"] == {"count": 20, "thin": False}


def test_a_commenters_last_comments_are_the_query(catalog_db, api_client):
    call_command("import_tikliveapi", str(FIXTURES), verbosity=0)

    by_comments = recommend(api_client, commenter="viewer_vic", limit=5)
    by_texts = recommend(api_client, interest_texts=VIC_COMMENTS, limit=5)

    assert by_comments["interest"] == {"count": 2, "thin": True}
    assert ids(by_comments) == ids(by_texts)
    assert_refused(api_client.post(URL, {"commenter": "nobody_here"}, format="json"), 400, field="commenter",
                   code="no_signals")
    assert_refused(api_client.post(URL, {"commenter": "viewer_vic", "interest_texts": ["x"]}, format="json"), 400)


def test_a_half_life_leans_a_creators_vector_to_its_newest_posts(catalog_db, settings):
    call_command("import_tikliveapi", str(FIXTURES), verbosity=0)
    ana = Creator.objects.get(handle="chef_ana")
    Creator.objects.filter(pk=ana.pk).update(bio="")  # the posts alone
    videos = list(Video.objects.filter(creator=ana).order_by("-created_at").values_list("id", flat=True))
    Video.objects.filter(pk=videos[-1]).update(created_at=Video.objects.get(pk=videos[0]).created_at
                                                - datetime.timedelta(days=30))
    embedding_jobs.refresh_video_documents(ids=videos)
    embedding_jobs.embed_videos(videos, model_name=django_settings.EMBEDDING_MODEL)
    vectors = {pk: np.asarray(v) for pk, v in Video.objects.filter(pk__in=videos).values_list("id", "embedding")}
    oldest = vectors[videos[-1]]

    settings.CREATOR_VECTOR_HALF_LIFE_DAYS = None
    embedding_jobs.embed_creators([ana.pk], model_name=django_settings.EMBEDDING_MODEL)
    equal = np.asarray(Creator.objects.get(pk=ana.pk).embedding)
    assert embedding_jobs.stale_creator_ids(django_settings.EMBEDDING_MODEL, ids=[ana.pk]) == []

    settings.CREATOR_VECTOR_HALF_LIFE_DAYS = 7.0
    # A new half-life makes the vector stale; the oldest post (30 days, 4+ half-lives) counts little.
    assert embedding_jobs.stale_creator_ids(django_settings.EMBEDDING_MODEL, ids=[ana.pk]) == [ana.pk]
    embedding_jobs.embed_creators([ana.pk], model_name=django_settings.EMBEDDING_MODEL)
    decayed = np.asarray(Creator.objects.get(pk=ana.pk).embedding)

    assert decayed @ oldest < equal @ oldest
    expected = sum(vectors[pk] for pk in videos[:-1]) + 0.5 ** (30 / 7) * oldest
    assert decayed @ (expected / np.linalg.norm(expected)) > 0.9999


def test_the_schema_documents_the_interest_and_the_commenter(catalog_db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    interest = components["Interest"]["properties"]
    assert set(interest) == {"count", "thin"} and "20" in interest["thin"]["description"]
    assert "interest" in components["Recommendation"]["required"]
    assert "last 100 comments" in components["RecommendationRequest"]["properties"]["commenter"]["description"]


def test_a_session_started_from_a_commenter_starts_from_their_comments(catalog_db):
    from feed import services
    from feed.services import FeedError

    call_command("import_tikliveapi", str(FIXTURES), verbosity=0)
    session = services.start_session(bucket={"commenter": "viewer_vic"})
    expected = encode_mean(VIC_COMMENTS)
    assert np.asarray(session.bias_vector) @ expected > 0.9999
    with pytest.raises(FeedError) as caught:
        services.start_session(bucket={"commenter": "nobody_here"})
    assert caught.value.field == "bucket.commenter" and caught.value.code == "no_signals"


def encode_mean(texts):
    from catalog.embedding import encode

    vectors = encode(texts, model_name=django_settings.EMBEDDING_MODEL)
    mean = vectors.mean(axis=0)
    return mean / np.linalg.norm(mean)
