"""Simulated viewers with hidden interests, for tuning algorithms offline.

A viewer's interest is one or two catalog videos ("seeds"); the videos it likes are the
``liked_share`` of the catalog most similar to its nearest seed. It watches liked videos
long (a high-attention watch) and skips the rest, exactly as a person would through the
feed services. The same viewer on a random feed gives the baseline.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from algorithms.batches import BatchParams, build_batch
from catalog.selectors import VideoCatalog

from . import services
from .models import FeedSession


@dataclass(frozen=True)
class HiddenViewer:
    liked: frozenset[int]


def make_viewers(ids: np.ndarray, vectors: np.ndarray, count: int, rng: np.random.Generator,
                 liked_share: float = 0.08) -> list[HiddenViewer]:
    """``count`` viewers; half have one interest, half two."""
    viewers = []
    per_interest = max(1, int(liked_share * len(ids)))
    for n in range(count):
        seeds = rng.choice(len(ids), size=1 + n % 2, replace=False)
        liked: set[int] = set()
        for seed in seeds:
            sims = vectors @ vectors[seed]
            liked.update(ids[np.argsort(-sims)[: per_interest // len(seeds)]].tolist())
        viewers.append(HiddenViewer(frozenset(liked)))
    return viewers


def watch_ms(liked: bool, rng: np.random.Generator) -> int:
    return int(rng.integers(15500, 30000)) if liked else int(rng.integers(500, 4000))


def run_algorithm(viewer: HiddenViewer, algorithm: str, batches: int, rng: np.random.Generator) -> tuple[list[float], list[str]]:
    """Per-batch precision (share of liked videos) and the state that served each batch.

    The session's id comes from ``rng`` (it seeds the session's batches): a seeded run gives
    the same numbers every time.
    """
    session = services.start_session(algorithm=algorithm, session_id=uuid.UUID(int=int(rng.integers(2**62))))
    precision, states = [], []
    try:
        for _ in range(batches):
            batch = services.next_batch(session.id)
            hits = [item.video.pk in viewer.liked for item in batch.items]
            precision.append(sum(hits) / max(1, len(hits)))
            states.append(batch.state)
            for item, hit in zip(batch.items, hits):
                services.record_view(session.id, video_id=item.video.pk, event_id=uuid.uuid4(), watched_ms=watch_ms(hit, rng))
    finally:
        FeedSession.objects.filter(pk=session.pk).delete()
    return precision, states


def run_random(viewer: HiddenViewer, batches: int, batch_size: int, rng: np.random.Generator) -> list[float]:
    catalog, seen, precision = VideoCatalog(), set(), []
    for _ in range(batches):
        batch = build_batch("random", BatchParams(), catalog, [], batch_size, frozenset(seen), rng)
        seen.update(c.id for c in batch)
        precision.append(sum(c.id in viewer.liked for c in batch) / max(1, len(batch)))
    return precision
