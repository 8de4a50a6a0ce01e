"""The embedding job through a real Celery worker on the real Redis broker."""
import os
import subprocess
import sys

import numpy as np
import pytest
import redis
from django.core.management import call_command

from catalog.importers import import_records, read_records
from catalog.models import Creator, Video
from tests.conftest import REPO, database_url

BROKER = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")


def _vectors(model):
    return {pk: np.asarray(v) for pk, v in model.objects.values_list("external_id", "embedding")}


@pytest.mark.slow
def test_worker_on_redis_gives_the_same_vectors_as_the_eager_run(transactional_db, trending_path, tmp_path):
    broker = redis.Redis.from_url(BROKER)
    try:
        broker.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis must run at {BROKER} for this test: {exc}")
    broker.flushdb()  # no stale tasks from an earlier run

    # A transactional test sees the committed shared catalog: work on a small slice instead.
    Video.objects.all().delete()
    Creator.objects.all().delete()
    records, _ = read_records(trending_path)
    import_records(records[:80])
    call_command("embed", verbosity=0)
    eager_videos, eager_creators = _vectors(Video), _vectors(Creator)
    Video.objects.update(embedding=None, embedding_model="", embedding_document_hash="")
    Creator.objects.update(embedding=None, embedding_model="", embedding_document_hash="")

    # With DATABASE_URL a process must be given its SECRET_KEY (as every replica would be).
    env = dict(os.environ, DATABASE_URL=database_url(), CELERY_BROKER_URL=BROKER, SECRET_KEY="celery-test-" + "k" * 40)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tokfeed", "worker", "--pool", "solo", "--loglevel", "INFO",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        job = subprocess.run(
            [sys.executable, "manage.py", "embed", "--batch-size", "32"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    worker_log = (tmp_path / "worker.log").read_text()
    assert job.returncode == 0, job.stderr + worker_log
    assert "embedded 80 videos" in job.stdout
    assert "catalog.embed_video_batch" in worker_log and "succeeded" in worker_log

    worker_videos, worker_creators = _vectors(Video), _vectors(Creator)
    assert worker_videos.keys() == eager_videos.keys()
    for key, vector in eager_videos.items():
        np.testing.assert_allclose(worker_videos[key], vector, atol=1e-4)
    for key, vector in eager_creators.items():
        np.testing.assert_allclose(worker_creators[key], vector, atol=1e-4)
