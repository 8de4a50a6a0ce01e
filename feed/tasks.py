"""Celery tasks of the feed: "simulate before shipping".

A ``SimulationRun`` (algorithms app) is queued by ``queue_simulation`` once its row is
committed; ``simulate_algorithm`` runs the feed evaluation (``feed.evaluation``: the simulated
viewers, with random and the ceiling) on the run's algorithm and the current default, writes
``done``/``total`` as viewers finish (the admin's progress bar), and ends ``done`` with the
report as ``result`` or ``failed`` with the message. A run is taken only once (queued ->
running), so a redelivered task does nothing.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from algorithms.evaluation import extract_tastes
from algorithms.models import Algorithm, SimulationRun
from algorithms.selectors import default_algorithm

from . import evaluation

logger = logging.getLogger(__name__)

#: The evaluation's settings that a simulation does not expose (``manage.py evaluate_feed``'s
#: defaults).
NOISE = 0.1
MIN_SHARE, MAX_SHARE = 0.02, 0.15


class SimulationError(Exception):
    """A simulation that cannot run as asked; the message is shown to the operator."""


def queue_simulation(algorithm: Algorithm, options: dict, *, requested_by=None) -> SimulationRun:
    """A new queued run of ``algorithm`` with the evaluation's ``options`` (viewers_per_taste,
    batches, tastes: 0 for all, seed); the job is sent when the row is committed."""
    run = SimulationRun.objects.create(
        algorithm=algorithm, algorithm_version=Algorithm.objects.values_list("version", flat=True).get(pk=algorithm.pk),
        requested_by=requested_by, options=options,
    )
    transaction.on_commit(lambda: simulate_algorithm.delay(run.pk))
    return run


@shared_task(name="feed.simulate_algorithm")
def simulate_algorithm(run_id: int) -> str:
    """Run the simulation ``run_id``; returns its final status."""
    taken = SimulationRun.objects.filter(pk=run_id, status=SimulationRun.Status.QUEUED).update(
        status=SimulationRun.Status.RUNNING)
    if not taken:
        return SimulationRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or "missing"
    run = SimulationRun.objects.select_related("algorithm").get(pk=run_id)
    try:
        result = _evaluate(run)
    except Exception as exc:  # the operator sees the message; the log keeps the traceback
        logger.exception("simulation %s of %s failed", run.pk, run.algorithm.slug)
        message = str(exc) if isinstance(exc, SimulationError) else f"{type(exc).__name__}: {exc}"
        SimulationRun.objects.filter(pk=run_id).update(status=SimulationRun.Status.FAILED, error=message,
                                                       finished_at=timezone.now())
        return SimulationRun.Status.FAILED
    SimulationRun.objects.filter(pk=run_id).update(status=SimulationRun.Status.DONE, result=result,
                                                   finished_at=timezone.now())
    return SimulationRun.Status.DONE


def _evaluate(run: SimulationRun) -> dict:
    options = run.options
    viewers, batches = int(options.get("viewers_per_taste", 2)), int(options.get("batches", 8))
    seed, wanted_tastes = int(options.get("seed", 0)), int(options.get("tastes") or 0)
    if viewers < 1 or batches < 1 or seed < 0 or wanted_tastes < 0:
        raise SimulationError(f"bad options {options}: viewers per taste and batches must be at least 1")

    videos, _ = evaluation.catalog_videos()
    if not videos:
        raise SimulationError("the catalog has no embedded video: import one and run `manage.py embed`")
    default = default_algorithm()
    chosen = [(run.algorithm.slug, run.algorithm.batch_size)]
    if default.pk != run.algorithm.pk:
        chosen.append((default.slug, default.batch_size))
    needed = max(size for _, size in chosen) * batches
    if len(videos) < needed:
        raise SimulationError(f"only {len(videos)} embedded videos: {batches} batches need {needed}; "
                              "ask for fewer batches")
    tastes = extract_tastes(videos, min_share=MIN_SHARE, max_share=MAX_SHARE)
    if wanted_tastes:
        tastes = tastes[:wanted_tastes]
    if not tastes:
        raise SimulationError(f"no taste (hashtag topic or creator) covers {MIN_SHARE:.0%} to {MAX_SHARE:.0%} "
                              f"of the {len(videos)} videos")

    total = len(chosen) * len(tastes) * viewers
    SimulationRun.objects.filter(pk=run.pk).update(total=total, done=0)
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done
        done += n
        SimulationRun.objects.filter(pk=run.pk).update(done=done)

    report = evaluation.evaluate(videos, tastes, chosen, viewers_per_taste=viewers, batches=batches,
                                 window=(min(3, batches), min(10, batches)), seed=seed, noise=NOISE,
                                 advance=advance)
    return {**report.as_dict(), "default": default.slug}


@shared_task(name="feed.refresh_bucket_centroids")
def refresh_bucket_centroids() -> dict[str, int]:
    """Recompute the cold-start centroids (``feed.cold_start``); on the beat schedule
    (``CELERY_BEAT_SCHEDULE``). Idempotent: a retry or an overlapping run stores the same rows."""
    from . import cold_start

    return cold_start.refresh_bucket_centroids()
