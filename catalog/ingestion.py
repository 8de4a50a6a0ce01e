"""Partner ingestion: a batch of trending records becomes a job that stores and embeds them.

``submit_batch`` (``POST /api/v1/ingest/videos/``) validates each record with
``importers.parse_record`` and records the batch as an ``IngestJob``: the failures by index and
field, the valid records to process. The job is sent to ``catalog.tasks.run_ingest_job`` once its
row is committed. The same records sent again by the same partner find their job instead (one
that failed is queued again), so a partner may resend a batch it is unsure about.

``run_job`` (the task) takes a queued job, stores its records through
``importers.import_records`` a chunk at a time, refreshes those videos' documents, embeds the
stale ones among them and then their creators, writing progress after each step, and ends
``done``. Every step is idempotent: records already stored and embedded cost an upsert and no
encoding (the embedding job's document hashes say nothing is stale).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import embedding_jobs
from .importers import RecordError, import_records, parse_record
from .models import IngestJob, Video

logger = logging.getLogger(__name__)

#: Records stored per transaction, with the job's progress written after each chunk.
STORE_CHUNK = 100
#: Videos (or creators) per encode, with the job's progress written after each batch.
EMBED_BATCH = 64
#: The phases a job goes through, in order, as its ``progress`` names them.
PHASES = ("store", "embed_videos", "embed_creators")


def batch_hash(records: Sequence) -> str:
    """sha256 of the records' canonical JSON (keys sorted, no spaces): the same batch, however
    its objects' keys were ordered or spaced, has the same hash."""
    canonical = json.dumps(records, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def validate_records(records: Sequence) -> tuple[list[dict], list[dict]]:
    """``([{"index", "record"}] valid, [{"index", "field", "message"}] failures)``."""
    valid, failures = [], []
    for index, record in enumerate(records):
        try:
            parse_record(record)
        except RecordError as exc:
            failures.append({"index": index, "field": exc.field, "message": str(exc)})
        else:
            valid.append({"index": index, "record": record})
    return valid, failures


def submit_batch(partner: str, records: Sequence) -> tuple[IngestJob, bool]:
    """The job of ``partner``'s batch ``records`` and whether it is new.

    A new job is queued, its task sent once the row is committed. A batch this partner sent
    before gets its existing job back untouched, unless that job failed: then it is queued again.
    """
    content_hash = batch_hash(records)
    existing = IngestJob.objects.defer("records").filter(partner=partner, content_hash=content_hash).first()
    if existing is not None:
        return _requeue_if_failed(existing), False
    valid, failures = validate_records(records)
    try:
        with transaction.atomic():
            job = IngestJob.objects.create(
                partner=partner, content_hash=content_hash, received=len(records), valid=len(valid),
                records=valid, failures=failures, progress=_initial_progress(len(valid)),
            )
            _send_on_commit(job)
    except IntegrityError:
        # The same batch, sent twice at once: the other request made the job.
        return IngestJob.objects.defer("records").get(partner=partner, content_hash=content_hash), False
    return job, True


def _initial_progress(valid: int) -> dict:
    """Each phase's ``done`` and ``total`` (null until the phase before it has run)."""
    return {"store": {"done": 0, "total": valid}, "embed_videos": {"done": 0, "total": None},
            "embed_creators": {"done": 0, "total": None}}


def _requeue_if_failed(job: IngestJob) -> IngestJob:
    with transaction.atomic():
        requeued = IngestJob.objects.filter(pk=job.pk, status=IngestJob.Status.FAILED).update(
            status=IngestJob.Status.QUEUED, error="", finished_at=None, progress=_initial_progress(job.valid),
            updated_at=timezone.now())
        if requeued:
            _send_on_commit(job)
    if requeued:
        job.refresh_from_db()
    return job


def _send_on_commit(job: IngestJob) -> None:
    from .tasks import run_ingest_job  # the tasks module runs this one's jobs

    job_id = str(job.pk)
    transaction.on_commit(lambda: run_ingest_job.delay(job_id))


def run_job(job_id, *, resume: bool = False) -> str:
    """Run job ``job_id`` if it is queued (or running, when ``resume``: a retry of the task that
    was running it); returns the job's status.

    An error escapes to the caller (the task), which retries transient ones and marks the job
    failed (``mark_failed``) on the others.
    """
    takeable = [IngestJob.Status.QUEUED, IngestJob.Status.RUNNING] if resume else [IngestJob.Status.QUEUED]
    now = timezone.now()
    taken = IngestJob.objects.filter(pk=job_id, status__in=takeable).update(
        status=IngestJob.Status.RUNNING, started_at=now, updated_at=now)
    if not taken:
        # Done already, failed, or being run: a redelivered task changes nothing.
        return IngestJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or "missing"
    job = IngestJob.objects.get(pk=job_id)
    video_ids = _store(job)
    _embed(job, video_ids)
    _save(job, status=IngestJob.Status.DONE, finished_at=timezone.now())
    return job.status


def mark_failed(job_id, exc: BaseException) -> None:
    """Record that job ``job_id`` failed (the log keeps the traceback; the partner gets a line)."""
    IngestJob.objects.filter(pk=job_id).update(
        status=IngestJob.Status.FAILED, finished_at=timezone.now(), updated_at=timezone.now(),
        error=f"the job failed ({type(exc).__name__}); send the same batch again to retry it"[:500],
    )


def _save(job: IngestJob, **fields) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    job.save(update_fields=[*fields, "updated_at"])


def _advance(job: IngestJob, phase: str, done: int, total: int | None = None, **fields) -> None:
    progress = dict(job.progress)
    progress[phase] = {"done": done, "total": progress[phase]["total"] if total is None else total}
    _save(job, progress=progress, **fields)


def _store(job: IngestJob) -> list[int]:
    """Upsert the job's records a chunk at a time; returns the ids of their videos."""
    records = [(f"record {item['index']}", item["record"]) for item in job.records]
    index_of = {where: item["index"] for (where, _), item in zip(records, job.records)}
    # A resumed job counts afresh: what an earlier run stored counts as updated now.
    created = updated = 0
    failures = [failure for failure in job.failures if f"record {failure['index']}" not in index_of]
    for start in range(0, len(records), STORE_CHUNK):
        report = import_records(records[start : start + STORE_CHUNK], chunk_size=STORE_CHUNK)
        created, updated = created + report.created, updated + report.updated
        failures += [{"index": index_of[where], "field": None, "message": reason} for where, reason in report.failed]
        _advance(job, "store", min(start + STORE_CHUNK, len(records)), created=created, updated=updated,
                 failures=sorted(failures, key=lambda failure: failure["index"]))
    external_ids = {parse_record(record).external_id for _, record in records}
    return list(Video.objects.filter(external_id__in=external_ids).order_by("id").values_list("id", flat=True))


def _embed(job: IngestJob, video_ids: list[int]) -> None:
    """Embed the stale ones among videos ``video_ids``, then their creators (whose vectors pool
    their videos'), as ``manage.py embed`` does for the whole catalog."""
    model_name = settings.EMBEDDING_MODEL
    embedding_jobs.refresh_video_documents(ids=video_ids)
    stale_videos = embedding_jobs.stale_video_ids(model_name, ids=video_ids)
    embedded = 0
    _advance(job, "embed_videos", 0, len(stale_videos))
    for start in range(0, len(stale_videos), EMBED_BATCH):
        embedded += embedding_jobs.embed_videos(stale_videos[start : start + EMBED_BATCH], model_name=model_name)
        _advance(job, "embed_videos", min(start + EMBED_BATCH, len(stale_videos)), videos_embedded=embedded)
    embedding_jobs.assign_nearest_topics(stale_videos, model_name)

    creator_ids = Video.objects.filter(id__in=video_ids).values_list("creator_id", flat=True).distinct()
    stale_creators = embedding_jobs.stale_creator_ids(model_name, ids=creator_ids)
    embedded_creators = 0
    _advance(job, "embed_creators", 0, len(stale_creators))
    for start in range(0, len(stale_creators), EMBED_BATCH):
        embedded_creators += embedding_jobs.embed_creators(stale_creators[start : start + EMBED_BATCH],
                                                           model_name=model_name)
        _advance(job, "embed_creators", min(start + EMBED_BATCH, len(stale_creators)),
                 creators_embedded=embedded_creators)
    if job.created:
        # New rows with vectors: let the planner know before the next ANN query (as `embed` does).
        embedding_jobs.analyze_catalog()
