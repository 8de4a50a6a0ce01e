"""A session's timeline for operators ("why this video"): what it was served and what it did, in order.

A read (a selector): each batch with the state and batch type that served it, how long it took
and the state its BATCH edge led to; each of its items with its source, similarity, score and the
score's parts, marked when it was withdrawn (replaced before it was shown) or is a revision (a
card that took a withdrawn one's place after a later view, ranked by the state then); and each
signal with its watch time and the state transition it caused, between the batches as they
happened. Only the latest ``MAX_BATCHES`` batches are shown (and the signals since the first of
them): a session can run for thousands.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef

from catalog.models import Video

from .models import FeedSession, Impression, ServedBatch, Signal

MAX_BATCHES = 30


@dataclass
class TimelineItem:
    position: int
    video_id: int
    caption: str
    source: str
    similarity: float | None
    score: float | None
    score_parts: dict[str, float]
    state: str
    withdrawn: bool
    revised: bool


@dataclass
class TimelineBatch:
    number: int
    at: dt.datetime
    state: str
    batch_type: str
    next_state: str | None
    build_ms: float | None
    items: list[TimelineItem] = field(default_factory=list)
    kind: str = "batch"


@dataclass
class TimelineSignal:
    at: dt.datetime
    video_id: int | None
    type: str
    watched_ms: int | None
    duration_ms: int | None
    state_before: str
    state_after: str
    #: For an undo: the type of the action it withdrew; for an action: whether it was undone.
    undoes: str = ""
    undone: bool = False
    kind: str = "signal"

    @property
    def transition(self) -> bool:
        return self.state_before != self.state_after


def session_timeline(session: FeedSession, max_batches: int = MAX_BATCHES) -> list[TimelineBatch | TimelineSignal]:
    """The session's latest batches and the signals among them, oldest first."""
    first = max(1, session.batch_count - max_batches + 1)
    served = {b.number: b for b in ServedBatch.objects.filter(session=session, number__gte=first)}
    impressions = list(Impression.objects.filter(session=session, batch_number__gte=first)
                       .order_by("batch_number", "position", "created_at", "id"))
    captions = dict(Video.objects.filter(id__in={i.video_id for i in impressions}).values_list("id", "caption"))
    batches: dict[int, TimelineBatch] = {}
    for impression in impressions:
        batch = batches.get(impression.batch_number)
        if batch is None:
            row = served.get(impression.batch_number)
            batch = batches[impression.batch_number] = TimelineBatch(
                number=impression.batch_number,
                at=row.created_at if row else impression.created_at,
                state=row.state if row else impression.state,
                batch_type=row.batch_type if row else impression.batch_type,
                next_state=row.next_state if row else None,
                build_ms=row.build_ms if row else None,
            )
        batch.items.append(TimelineItem(
            position=impression.position, video_id=impression.video_id,
            caption=captions.get(impression.video_id, ""), source=impression.source,
            similarity=impression.similarity, score=impression.score, score_parts=impression.score_parts or {},
            state=impression.state, withdrawn=impression.withdrawn,
            # A revision is stored after its batch, by the state the session was in then.
            revised=impression.created_at > batch.at,
        ))
    since = min((b.at for b in batches.values()), default=None)
    signals = Signal.objects.filter(session=session).order_by("id")
    if since is not None and first > 1:
        signals = signals.filter(created_at__gte=since)
    entries: list[TimelineBatch | TimelineSignal] = list(batches.values())
    signals = signals.select_related("undoes").annotate(
        was_undone=Exists(Signal.objects.filter(undoes=OuterRef("pk"))))
    entries += [TimelineSignal(s.created_at, s.video_id, s.type, s.watched_ms, s.duration_ms, s.state_before,
                               s.state_after, undoes=s.undoes.type if s.undoes else "", undone=s.was_undone)
                for s in signals]
    # A batch before the signals recorded at the same instant: a view follows what served it.
    entries.sort(key=lambda e: (e.at, e.kind != "batch"))
    return entries
