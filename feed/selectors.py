"""Read-only queries of the viewer-facing feed: which feed session a viewer is in, and the cards
(videos with the reason they were served) that a page or a websocket frame shows.

Nothing here writes; creating sessions and serving batches stay in ``services``.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

from django.core.exceptions import ValidationError

from algorithms.machine import POSITIVE
from algorithms.models import Algorithm
from algorithms.selectors import load_blueprint
from catalog.models import Video
from catalog.selectors import videos_for_display

from .explanation_queries import nearest_reacted
from .explanations import in_words
from .models import FeedSession, Impression, Signal
from .services import Batch, RevisedCard

#: Where the page view keeps the viewer's feed session id in the Django session; the websocket
#: consumer and the HTTP fallback read it from there.
FEED_SESSION_KEY = "feed_session_id"


@dataclass(frozen=True)
class Card:
    """One video as the feed shows it, with why it was served (for the "why this video" overlay)."""

    video: Video
    batch: int
    position: int
    state: str
    batch_type: str
    source: str
    similarity: float | None
    #: Why it was served, in the viewer's words (``explained``); empty until explained.
    reason: str = ""

    @property
    def dom_id(self) -> str:
        # Batch and position identify a card: a batch that arrives twice (a resent refill
        # request after a reconnect) repeats these ids, which is how the client drops it.
        return f"card-{self.batch}-{self.position}"

    @property
    def duration_ms(self) -> int:
        return self.video.duration_s * 1000

    @property
    def duration_label(self) -> str:
        minutes, seconds = divmod(self.video.duration_s, 60)
        return f"{minutes}:{seconds:02d}"

    @property
    def extra_hashtags(self) -> list[str]:
        """The video's hashtags its caption does not already show."""
        caption = self.video.caption.lower()
        return [tag.name for tag in self.video.hashtags.all() if f"#{tag.name.lower()}" not in caption]

    @property
    def likes(self) -> str:
        return compact_count(self.video.like_count)

    @property
    def plays(self) -> str:
        return compact_count(self.video.play_count)

    @property
    def hue(self) -> int:
        """A stable colour per video for the poster card (the catalog's cover images are dead links)."""
        return (self.video.pk * 47) % 360


def compact_count(value: int) -> str:
    """1234 -> "1.2K", 3400000 -> "3.4M": counts as a feed shows them."""
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if value >= limit:
            text = f"{value / limit:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return str(value)


def explained(session_id, cards: list[Card]) -> list[Card]:
    """``cards`` with their ``reason`` in words (``feed.explanations``): a pick near the viewer's
    history names the nearest video they reacted to positively (as the session's algorithm
    weighs signal types now)."""
    if not cards:
        return cards
    algorithm = FeedSession.objects.filter(pk=session_id).values("algorithm_id", "algorithm__version").first()
    nearest = {}
    if algorithm is not None:
        blueprint = load_blueprint(algorithm["algorithm_id"], version=algorithm["algorithm__version"])
        positive = [s.name for s in blueprint.signals if s.polarity == POSITIVE]
        nearest = nearest_reacted(session_id, [c.video.pk for c in cards if c.source in ("ann", "tags")], positive)
    return [replace(c, reason=in_words(c.source, c.batch_type, None, c.video.play_count, nearest.get(c.video.pk)))
            for c in cards]


def cards_of_batch(batch: Batch) -> list[Card]:
    return [
        Card(item.video, batch.number, item.position, batch.state, batch.batch_type, item.source, item.similarity)
        for item in batch.items
    ]


def cards_of_revision(revised: list[RevisedCard]) -> list[Card]:
    """The cards that replace upcoming ones (``services.revise_upcoming``), at their places."""
    return [
        Card(r.item.video, r.batch, r.position, r.state, r.batch_type, r.item.source, r.item.similarity)
        for r in revised
    ]


def _cards_of_impressions(impressions) -> list[Card]:
    impressions = list(impressions)
    videos = videos_for_display(i.video_id for i in impressions)
    return [
        Card(videos[i.video_id], i.batch_number, i.position, i.state, i.batch_type, i.source, i.similarity)
        for i in impressions
    ]


def unwatched_cards(session: FeedSession) -> list[Card]:
    """The latest batch's cards the viewer has not reacted to yet (shown again on a reload), the
    replacements of revised cards in place of the withdrawn ones."""
    if not session.batch_count:
        return []
    reacted = Signal.objects.filter(session=session, video__isnull=False).values("video_id")
    impressions = (
        Impression.objects.filter(session=session, batch_number=session.batch_count, withdrawn=False)
        .exclude(video_id__in=reacted)
        .order_by("position")
    )
    return _cards_of_impressions(impressions)


def _by_id(session_id) -> FeedSession | None:
    try:
        return FeedSession.objects.select_related("algorithm").filter(pk=uuid.UUID(str(session_id))).first()
    except (ValueError, ValidationError):
        return None


def anonymous_feed_session(session_id, algorithm: str | None = None) -> FeedSession | None:
    """The anonymous feed session the Django session points at (if it runs ``algorithm`` when one is named)."""
    found = _by_id(session_id) if session_id else None
    if found is None or found.viewer_id is not None:
        return None
    if algorithm and found.algorithm.slug != algorithm:
        return None
    return found


def viewer_feed_session(user, algorithm: str | None = None) -> FeedSession | None:
    """A logged-in viewer's most recent feed session (on any device), on ``algorithm`` when one is named."""
    sessions = FeedSession.objects.select_related("algorithm").filter(viewer=user)
    if algorithm:
        sessions = sessions.filter(algorithm__slug=algorithm)
    return sessions.order_by("-updated_at").first()


def algorithm_of_session(session_id) -> Algorithm | None:
    found = _by_id(session_id)
    return found.algorithm if found else None


#: The liked page shows at most this many videos.
MAX_LIKED = 200


def liked_videos(*, user=None, anonymous_key: str | None = None) -> list[Video]:
    """The videos a viewer liked and did not unlike, most recent like first, over all their feed
    sessions (a logged-in viewer's, else the anonymous browser session's); none for neither."""
    if user is not None:
        sessions = FeedSession.objects.filter(viewer=user)
    elif anonymous_key:
        sessions = FeedSession.objects.filter(viewer=None, partner=None, anonymous_key=anonymous_key)
    else:
        return []
    liked = (Signal.objects.filter(session__in=sessions, type="LIKE", undone_by__isnull=True)
             .order_by("-id").values_list("video_id", flat=True))
    ids = list(dict.fromkeys(liked))[:MAX_LIKED]
    videos = videos_for_display(ids)
    return [videos[i] for i in ids if i in videos]


def feed_session_exists(session_id) -> bool:
    return _by_id(session_id) is not None if session_id else False


def session_state(session_id) -> str | None:
    return FeedSession.objects.filter(pk=session_id).values_list("state", flat=True).first()


def last_view_signal(session_id) -> Signal | None:
    """The signal the session's most recent view produced (the overlay shows it)."""
    return Signal.objects.filter(session_id=session_id, watched_ms__isnull=False).order_by("-id").first()


@dataclass(frozen=True)
class SessionEvidence:
    """What a partner's session says about its viewer, for recommendations: the videos of its
    last positive and negative signals (newest first, as the algorithm weighs them now) and
    every video it was served (never recommended again)."""

    positives: list[int]
    negatives: list[int]
    served: frozenset[int]


def partner_session_evidence(session_id, partner: str | None, last_n: int = 100) -> SessionEvidence | None:
    """``SessionEvidence`` of ``partner``'s session ``session_id`` (None when it has no such
    session: another partner's, or a viewer's feed session, is not found)."""
    from algorithms.machine import NEGATIVE, POSITIVE
    from algorithms.selectors import load_blueprint

    session = _by_id(session_id)
    if session is None or session.partner != partner or partner is None:
        return None
    blueprint = load_blueprint(session.algorithm_id, version=session.algorithm.version)
    polarity = {s.name: s.polarity for s in blueprint.signals}
    recent = (Signal.objects.filter(session=session, video__isnull=False,
                                    type__in=[name for name, p in polarity.items() if p != 0])
              .order_by("-id").values_list("video_id", "type")[:last_n])
    positives, negatives = [], []
    for video, kind in recent:
        (positives if polarity[kind] == POSITIVE else negatives if polarity[kind] == NEGATIVE else []).append(video)
    served = frozenset(Impression.objects.filter(session=session).values_list("video_id", flat=True))
    return SessionEvidence(list(dict.fromkeys(positives)), list(dict.fromkeys(negatives)), served)


#: The reranker trains on at most this many of the newest labelled impressions: enough for a
#: gradient-boosted model over ten features, and a bounded read for the nightly job.
RERANKER_LOG_LIMIT = 200_000


def reranker_log(limit: int = RERANKER_LOG_LIMIT):
    """The learned reranker's training log (``algorithms.ranking.learned.RerankerLog``, its
    catalog parts left empty): the newest ``limit`` impressions that were shown (not withdrawn)
    and reacted to (their session has a signal on their video), each labelled 1 when one of
    those signals is in ``LABEL_SIGNALS`` (the long view or a positive action), and every signal
    on a video of those impressions' sessions, with its polarity in the session's algorithm. An undone
    action and its undo count as never made."""
    from django.db.models import Exists, OuterRef

    from algorithms.ranking.learned import LABEL_SIGNALS, LoggedImpression, LoggedSignal, RerankerLog
    from algorithms.selectors import load_blueprint

    # An undone action counts as never made (nor does its undo row react to anything).
    reacted = Signal.objects.filter(session=OuterRef("session"), video=OuterRef("video"), undone_by__isnull=True,
                                    undoes__isnull=True)
    impressions = list(
        Impression.objects.filter(withdrawn=False).filter(Exists(reacted))
        .order_by("-created_at", "-id").values_list("session_id", "video_id", "created_at")[:limit]
    )
    sessions = {session for session, _, _ in impressions}
    signals = list(Signal.objects.filter(session_id__in=sessions, video__isnull=False, undone_by__isnull=True,
                                         undoes__isnull=True)
                   .values_list("session_id", "video_id", "created_at", "type", "session__algorithm_id"))
    polarity = {algorithm: {s.name: s.polarity for s in load_blueprint(algorithm).signals}
                for algorithm in {row[4] for row in signals}}
    logged = [LoggedSignal(str(session), video, at.timestamp(), polarity[algorithm].get(kind, 0), kind in LABEL_SIGNALS)
              for session, video, at, kind, algorithm in signals]
    positive = {(s.session, s.video) for s in logged if s.positive}
    return RerankerLog(
        [LoggedImpression(str(session), video, at.timestamp(), int((str(session), video) in positive))
         for session, video, at in impressions],
        logged,
    )


def positive_histories(video_ids) -> dict[int, frozenset[str]]:
    """``{video: sessions with a LABEL_SIGNALS signal on it}`` for ``video_ids`` (co-occurrence
    at serving time; ``learned.histories_before`` is the same over a log, as of an impression)."""
    from algorithms.ranking.learned import LABEL_SIGNALS

    found: dict[int, set[str]] = {}
    rows = (Signal.objects.filter(video_id__in=list(video_ids), type__in=sorted(LABEL_SIGNALS), undone_by__isnull=True)
            .values_list("video_id", "session_id").distinct())
    for video, session in rows:
        found.setdefault(video, set()).add(str(session))
    return {video: frozenset(sessions) for video, sessions in found.items()}
