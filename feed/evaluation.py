"""The feed measured offline: simulated viewers with tastes from outside the embedding space
(``algorithms.evaluation``) watch the catalog through the feed's own services, as the browser
client drives them, next to a random feed and the ceiling.

A viewer watches cards in order from a queue of upcoming cards. Leaving a card sends its view
(``services.record_view``); the next batch is asked for when the viewer reaches a card with
``REFILL_AT`` or fewer cards after it, on the view of the card before it, as the client's refill
rides on that view event. After each view, the cards after the one on screen are re-ranked and
replaced (``services.revise_upcoming``), as the socket's client swaps them in. Every card shown
counts, for the batch that served it, as on-topic or not. The sessions are deleted at the end.

Everything random comes from generators seeded by the run's seed, the taste and the viewer
(session ids, which seed each session's batches, and event ids included): a seeded run gives
the same numbers every time, and each algorithm meets the same viewers.
"""
from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from algorithms.evaluation import (
    CatalogVideo,
    Report,
    Taste,
    Viewer,
    ceiling_per_batch,
    random_per_batch,
    random_uuid,
    score,
)
from catalog.models import Video

from . import services
from .client_events import REFILL_AT
from .models import FeedSession

#: Streams of randomness per (taste, viewer), so adding an algorithm changes nobody's numbers.
FEED_STREAM, RANDOM_STREAM = 0, 1


def catalog_videos() -> tuple[list[CatalogVideo], int]:
    """The embedded videos as plain records (metadata only), and how many are not embedded."""
    tags: dict[int, set[str]] = {}
    for video_id, name in Video.hashtags.through.objects.filter(video__embedding__isnull=False).values_list(
            "video_id", "hashtag__name"):
        tags.setdefault(video_id, set()).add(name)
    rows = Video.objects.filter(embedding__isnull=False).order_by("id").values_list("id", "creator__handle", "duration_s")
    videos = [CatalogVideo(pk, handle, frozenset(tags.get(pk, ())), duration_s * 1000) for pk, handle, duration_s in rows]
    return videos, Video.objects.filter(embedding__isnull=True).count()


@dataclass(frozen=True)
class Card:
    """A card in the viewer's feed: a served video and the batch (and place in it) that served it."""

    video_id: int
    duration_ms: int
    batch: int
    position: int


def _accepts_duration() -> bool:
    return "duration_ms" in inspect.signature(services.record_view).parameters


class FeedRun:
    """One viewer's session on one algorithm, driven as the browser client drives it."""

    def __init__(self, viewer: Viewer, algorithm: str, batches: int):
        self.viewer, self.algorithm, self.batches = viewer, algorithm, batches
        self.upcoming: deque[Card] = deque()
        self.last_batch = 0
        self.shown: dict[int, list[bool]] = {}  # batch number -> on-topic, per card shown
        self.send_duration = _accepts_duration()

    def run(self) -> list[float]:
        """The on-topic share of each batch, 1 to ``batches``, over the cards shown."""
        rng = self.viewer.rng
        session = services.start_session(algorithm=self.algorithm, session_id=random_uuid(rng))
        self.session_id = session.id
        try:
            self.refill()
            previous: tuple[Card, int] | None = None
            while self.upcoming:
                card = self.upcoming.popleft()  # the viewer reaches the next card
                if previous is not None:
                    outcome = self.send_view(*previous)
                    self.replace_upcoming(previous[0], outcome)
                if len(self.upcoming) <= REFILL_AT:
                    self.refill()
                self.shown.setdefault(card.batch, []).append(self.viewer.likes(card.video_id))
                previous = (card, self.viewer.watch(card.video_id, card.duration_ms))
            if previous is not None:
                self.send_view(*previous)
        finally:
            FeedSession.objects.filter(pk=session.pk).delete()
        return [float(np.mean(self.shown[b])) if self.shown.get(b) else 0.0 for b in range(1, self.batches + 1)]

    def refill(self) -> None:
        """Ask for the batch after the last one held (until ``batches`` have been served)."""
        if self.last_batch >= self.batches:
            return
        batch = services.next_batch(self.session_id, after=self.last_batch)
        self.last_batch = batch.number
        self.upcoming.extend(Card(item.video.pk, item.video.duration_s * 1000, batch.number, item.position)
                             for item in batch.items)

    def send_view(self, card: Card, watched_ms: int) -> services.SignalOutcome:
        extra = {"duration_ms": card.duration_ms} if self.send_duration and card.duration_ms > 0 else {}
        return services.record_view(self.session_id, video_id=card.video_id, event_id=random_uuid(self.viewer.rng),
                             watched_ms=watched_ms, **extra)

    def replace_upcoming(self, card: Card, outcome: services.SignalOutcome) -> None:
        """The one place where the feed may change what comes next, after the view of ``card``
        was recorded (``outcome``: its signal and the session's new state): replace cards in
        ``self.upcoming`` (not yet shown; the card now on screen is already out of it). Cards
        count for the batch number they carry.

        As the browser's client does with the socket's frame: the service re-ranks the cards
        after the one on screen (``services.revise_upcoming``) and each replacement takes the
        place of the card with its batch number and position."""
        if outcome.duplicate:
            return
        revised = services.revise_upcoming(self.session_id, viewed_video=card.video_id)
        if not revised:
            return
        by_place = {(r.batch, r.position): r.item.video for r in revised}
        self.upcoming = deque(
            Card(video.pk, video.duration_s * 1000, held.batch, held.position)
            if (video := by_place.get((held.batch, held.position))) is not None else held
            for held in self.upcoming
        )


def evaluate(videos: Sequence[CatalogVideo], tastes: Sequence[Taste], algorithms: Sequence[tuple[str, int]], *,
             viewers_per_taste: int, batches: int, window: tuple[int, int], seed: int, noise: float,
             advance: Callable[[int], None] = lambda n=1: None) -> Report:
    """Every algorithm (slug, batch size) and both baselines on every taste's viewers."""
    primary_size = algorithms[0][1]
    report = Report(list(tastes), batches, window, primary_size,
                    settings={"viewers_per_taste": viewers_per_taste, "seed": seed, "noise": noise,
                              "algorithms": [slug for slug, _ in algorithms]})
    catalog_ids = [v.id for v in videos]

    def viewer(t: int, v: int, stream: int) -> Viewer:
        return Viewer(tastes[t], np.random.default_rng([seed, t, v, stream]), noise)

    for slug, size in algorithms:
        report.batch_sizes[slug] = size
        report.scores[slug] = {}
        for t, taste in enumerate(tastes):
            per_viewer = []
            for v in range(viewers_per_taste):
                per_viewer.append(FeedRun(viewer(t, v, FEED_STREAM), slug, batches).run())
                advance(1)
            ceiling = ceiling_per_batch(taste.size, size, batches)
            report.scores[slug][taste.name] = score(per_viewer, taste.share, ceiling, window)

    report.scores["random"], report.scores["ceiling"] = {}, {}
    for t, taste in enumerate(tastes):
        ceiling = ceiling_per_batch(taste.size, primary_size, batches)
        randoms = [random_per_batch(catalog_ids, taste.videos, primary_size, batches, viewer(t, v, RANDOM_STREAM).rng)
                   for v in range(viewers_per_taste)]
        report.scores["random"][taste.name] = score(randoms, taste.share, ceiling, window)
        report.scores["ceiling"][taste.name] = score([ceiling], taste.share, ceiling, window)
    return report
