"""Celery tasks of the catalog: embedding batches. Each is idempotent, so a retry is harmless."""
from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import embedding_jobs

# A database restart or a dropped connection is worth retrying; anything else is a bug to see.
TRANSIENT_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    name="catalog.embed_video_batch",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def embed_video_batch(ids: list[int], model_name: str, device: str = "auto", batch_size: int = 64) -> int:
    return embedding_jobs.embed_videos(ids, model_name=model_name, device=device, batch_size=batch_size)


@shared_task(
    name="catalog.embed_creator_batch",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def embed_creator_batch(ids: list[int], model_name: str, device: str = "auto", batch_size: int = 64) -> int:
    return embedding_jobs.embed_creators(ids, model_name=model_name, device=device, batch_size=batch_size)


@shared_task(name="catalog.cluster_topics", autoretry_for=TRANSIENT_ERRORS, retry_backoff=True, max_retries=5)
def cluster_topics(model_name: str) -> int:
    return embedding_jobs.cluster_topics(model_name)
