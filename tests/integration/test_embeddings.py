import threading

import numpy as np
from django.conf import settings
from django.core.management import call_command

from catalog.embedding import encode
from catalog.models import Creator, Video
from tests.conftest import all_at_once


def test_every_video_has_a_unit_vector_from_the_configured_model(catalog_db):
    rows = list(Video.objects.values_list("embedding", "embedding_model", "embedding_document_hash", "document_hash"))
    assert len(rows) == 1000
    vectors = np.array([r[0] for r in rows])
    assert vectors.shape == (1000, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert {r[1] for r in rows} == {settings.EMBEDDING_MODEL}
    assert all(r[2] == r[3] and r[2] for r in rows)


def test_creators_pool_bio_and_videos_into_unit_vectors(catalog_db):
    creator = Creator.objects.get(handle="ninakleij")
    assert np.linalg.norm(creator.embedding) == np.float32(1.0) or abs(
        np.linalg.norm(creator.embedding) - 1.0
    ) < 1e-5
    video = creator.videos.get()
    # Its vector lies between its bio and its only video, closer to each than they are apart.
    bio = encode([creator.bio], model_name=settings.EMBEDDING_MODEL)[0]
    v = video.embedding
    c = creator.embedding
    assert np.dot(c, v) > np.dot(bio, v) and np.dot(c, bio) > np.dot(bio, v)


def test_rerunning_embed_embeds_nothing(catalog_db, capsys):
    call_command("embed")
    assert "embedded 0 videos and 0 creators" in capsys.readouterr().out


def test_changing_a_caption_reembeds_exactly_that_video_and_its_creator(catalog_db, capsys):
    video = Video.objects.select_related("creator").get(external_id="6907228749016714497")
    before = video.embedding
    untouched = dict(Video.objects.exclude(pk=video.pk).values_list("pk", "embedded_at"))
    video.caption = "Leg day at the gym: squats and lunges"
    video.save()

    call_command("embed")

    assert "embedded 1 videos and 1 creators" in capsys.readouterr().out
    video.refresh_from_db()
    assert "squats" in video.document
    assert float(np.dot(before, video.embedding)) < 0.9
    assert untouched == dict(Video.objects.exclude(pk=video.pk).values_list("pk", "embedded_at"))


def test_same_topic_captions_are_closer_than_different_topics():
    fitness_a, fitness_b, anime = encode(
        [
            "30 minute full body HIIT workout, no equipment #fitness #gym",
            "My leg day routine: squats, deadlifts and lunges #workout",
            "Naruto vs Sasuke is still the best fight in anime history #anime #manga",
        ],
        model_name=settings.EMBEDDING_MODEL,
    )
    assert np.dot(fitness_a, fitness_b) > np.dot(fitness_a, anime) + 0.1
    assert np.dot(fitness_a, fitness_b) > np.dot(fitness_b, anime) + 0.1


def test_threads_asking_for_the_model_at_once_share_one_load(monkeypatch):
    # The first requests to a fresh server load the model from several threads at once: each
    # built its own, and one failed now and then ("Cannot copy out of meta tensor"), a 500.
    from catalog import embedding

    builds = []
    build = embedding._build_model
    monkeypatch.setattr(embedding, "_build_model", lambda *a: builds.append(a) or build(*a))
    monkeypatch.setattr(embedding, "_loaded_models", {})
    models, errors = all_at_once(lambda _: embedding.load_model(settings.EMBEDDING_MODEL), 4)
    assert errors == []
    assert len(models) == 4 and all(m is models[0] for m in models)
    assert len(builds) == 1


def test_a_loaded_model_does_not_wait_for_another_model_loading():
    # A cross-encoder's first load takes seconds; encoding with the loaded embedding model
    # must not queue behind it.
    from catalog import embedding

    model = embedding.load_model(settings.EMBEDDING_MODEL)
    building, finish = threading.Event(), threading.Event()

    def slow_build():
        building.set()
        finish.wait(60)
        return object()

    loader = threading.Thread(target=embedding.load_once, args=(("slow-test-model",), slow_build))
    loader.start()
    try:
        assert building.wait(30)
        got = []
        reader = threading.Thread(target=lambda: got.append(embedding.load_model(settings.EMBEDDING_MODEL)))
        reader.start()
        reader.join(30)  # a guard against a hang, not a timing: it returns at once or never
        assert got == [model] and not finish.is_set()
    finally:
        finish.set()
        loader.join()
        embedding._loaded_models.pop(("slow-test-model",), None)
