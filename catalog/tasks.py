"""Celery tasks of the catalog: embedding batches and partner ingestion jobs. Each is
idempotent, so a retry is harmless."""
import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import embedding_jobs, ingestion

logger = logging.getLogger(__name__)

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


@shared_task(
    bind=True,
    name="catalog.run_ingest_job",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def run_ingest_job(self, job_id: str) -> str:
    """Run a partner's ingestion job (``catalog.ingestion.run_job``); returns its final status.

    A transient database error is retried (the retry resumes the running job); once retries run
    out, or on any other error, the job is marked failed, so it never stays "running".
    """
    try:
        return ingestion.run_job(job_id, resume=self.request.retries > 0)
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= self.max_retries:
            ingestion.mark_failed(job_id, exc)
        raise
    except Exception as exc:  # the partner sees that it failed; the log keeps the traceback
        logger.exception("ingestion job %s failed", job_id)
        ingestion.mark_failed(job_id, exc)
        return "failed"
