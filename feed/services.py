"""The feed's use cases: start a session, serve its next batch, record what the viewer did, and
revise the cards not yet shown after a view (``revise_upcoming``).

Every call that changes a session locks its row (``SELECT ... FOR UPDATE``) for the length of
its transaction, so concurrent signals and batch requests on one session are applied one after
another and no state transition is lost. Every call reads the algorithm's version with that lock
and takes the blueprint of that version (``algorithms.selectors.load_blueprint``, cached by
version): an operator's edit applies to the very next batch or signal.

The lock and each statement after it are bounded (``FEED_LOCK_TIMEOUT_MS``,
``FEED_STATEMENT_TIMEOUT_MS``): a session held by other work answers its own caller with a
retryable ``SessionBusy`` instead of holding a worker, and every other session, hostage.

A session belongs to whoever started it: a partner (the name of its API key) or, with no
partner, the feed (its viewer's browser session keeps the id). Every call names the partner it
acts for and finds only that partner's sessions; another's are ``SessionNotFound``.

Every applied signal and every served batch is published once, after its transaction commits
(``tokfeed.event_stream``), whichever transport asked for it (websocket, HTTP fallback, partner
API): to the session's group (``session_group``: the viewer's open tabs hear of the new state)
and to ``MONITOR_GROUP`` (the operators' live monitor). A resent event (a duplicate) publishes
nothing, and a channel layer that is down costs the events, never the use case.

Partner keys are issued here too (``create_key``; the admin issues them through the library's
admin base class).
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from psycopg import errors as pg_errors

from algorithms import machine
from algorithms.ranking import BIASED, Candidate, build_batch
from algorithms.models import Algorithm
from algorithms.selectors import algorithm_for_new_session, load_blueprint
from algorithms.vectors import WeightedSignal, normalize, one_blas_thread, seeded_with_bias
from catalog.models import Topic, Video
from catalog.selectors import VideoCatalog, catalog_size, tags_of, vector_from_bytes, videos_for_display
from tokfeed.errors import Busy, NotFound, ServiceError
from tokfeed.event_stream import publish_on_commit
from tokfeed.rows import array_literal, field_names, from_row, prepared_rows, select_list

from . import cold_start, metrics
from .models import DEFAULT_SCOPES, SCOPES, FeedSession, Impression, PartnerKey, ServedBatch, Signal, scope_field

logger = logging.getLogger(__name__)

#: The live monitor's group in the event stream: every signal and batch of every session.
MONITOR_GROUP = "feed-monitor"


def session_group(session_id) -> str:
    """The event stream's group of one feed session: every socket open on it (tabs, devices)."""
    return f"feed-session.{session_id}"


class FeedError(ServiceError):
    """A request the feed cannot honour; ``field`` names the input at fault, if any."""


class SessionNotFound(NotFound, FeedError):
    pass


class SessionBusy(Busy, FeedError):
    """The session is locked by other work (or its statements ran too long): retry shortly."""


#: A described interest longer than this is refused before it reaches the model (which reads
#: only its first 256 tokens anyway).
MAX_BUCKET_TEXT_CHARS = 2000
MAX_BUCKET_VIDEOS = 100
#: A view longer than a day is a client bug, not attention (and would not fit the column).
MAX_WATCHED_MS = 24 * 3600 * 1000
#: A view lasts at most this many plays of its video (of at least MIN_LOOP_MS each): a short
#: video loops while watched, but not for an hour.
MAX_WATCH_LOOPS = 10
MIN_LOOP_MS = 30_000


def max_watched_ms(duration_s: int) -> int:
    return min(MAX_WATCHED_MS, MAX_WATCH_LOOPS * max(duration_s * 1000, MIN_LOOP_MS))


@dataclass(frozen=True)
class ServedItem:
    video: Video
    position: int
    source: str
    similarity: float | None


@dataclass(frozen=True)
class Batch:
    number: int
    state: str
    next_state: str
    batch_type: str
    items: list[ServedItem]


@dataclass(frozen=True)
class SignalOutcome:
    signal: str | None
    state: str
    duplicate: bool


@dataclass(frozen=True)
class RevisedCard:
    """A card not yet shown, served again: ``item`` takes the place ``(batch, position)`` held,
    picked by ``state`` (of ``batch_type``) from what the session has done by now."""

    batch: int
    position: int
    state: str
    batch_type: str
    item: ServedItem


def start_session(*, algorithm: str | Algorithm | None = None, bucket: dict | None = None, viewer=None,
                  anonymous_key: str = "", partner: str | None = None,
                  session_id: uuid.UUID | None = None) -> FeedSession:
    """A new session in ``algorithm``'s initial state (when none is named, the A/B split's pick:
    ``algorithms.selectors.algorithm_for_new_session``),
    owned by ``partner`` (None: the feed's own).

    ``session_id`` is for reproducible runs (simulations): a session's id seeds the randomness
    of its batches, so the same id serves the same batches to the same signals.

    ``bucket`` is an optional cold-start hint whose vector the session starts from (its first
    evidence; ``biased`` states also recall around it): ``{"text": "..."}`` (embedded),
    ``{"videos": [ids]}``, ``{"topic": n}``, ``{"commenter": handle}`` (the interest of their last
    100 comments) or ``{"profile": {"country", "app_version", "interests"}}`` (``feed.cold_start``:
    its bucket's centroid). A session without a bucket
    starts from the global centroid of engaged content, once the cold-start job has computed one.
    """
    session_id = session_id or uuid.uuid4()
    if algorithm is None:
        algorithm = algorithm_for_new_session(session_id, viewer=viewer)
    elif isinstance(algorithm, str):
        algorithm = Algorithm.objects.filter(slug=algorithm).first()
        if algorithm is None:
            known = ", ".join(Algorithm.objects.values_list("slug", flat=True))
            raise FeedError(f"unknown algorithm; known: {known}", field="algorithm")
    bucket = bucket or {}
    return FeedSession.objects.create(
        id=session_id,
        algorithm=algorithm,
        state=algorithm.initial_state,
        bucket=bucket,
        bias_vector=bucket_vector(bucket) if bucket else cold_start.global_centroid(),
        viewer=viewer,
        anonymous_key=anonymous_key,
        partner=partner,
    )


def bucket_vector(bucket: dict) -> np.ndarray | None:
    """The unit vector a cold-start bucket stands for (None for an empty bucket)."""
    if not bucket:
        return None
    if not isinstance(bucket, dict) or len(bucket) != 1:
        raise FeedError('bucket must be one of {"text": ...}, {"videos": [ids]}, {"topic": n}, {"commenter": handle} '
                        'or {"profile": {...}}', field="bucket")
    (kind, value), = bucket.items()
    if kind == "commenter" and isinstance(value, str) and 0 < len(value) <= 100:
        from catalog.interests import commenter_interest

        interest = commenter_interest(value)
        if interest.vector is None:
            raise FeedError(f"no comments by {value!r}", field="bucket.commenter", code="no_signals")
        return interest.vector
    if kind == "profile":
        try:
            return cold_start.profile_vector(cold_start.parse_profile(value))
        except cold_start.ProfileError as exc:
            raise FeedError(str(exc), field=f"bucket.{exc.field}") from None
    if kind == "text" and isinstance(value, str) and len(value) > MAX_BUCKET_TEXT_CHARS:
        raise FeedError(f"the bucket's text is {len(value)} characters; at most {MAX_BUCKET_TEXT_CHARS}",
                        field="bucket.text", code="max_length")
    if kind == "videos" and isinstance(value, list) and len(value) > MAX_BUCKET_VIDEOS:
        raise FeedError(f"the bucket names {len(value)} videos; at most {MAX_BUCKET_VIDEOS}",
                        field="bucket.videos", code="max_length")
    if kind == "text" and isinstance(value, str) and value.strip():
        from catalog.embedding import encode

        return encode([value.strip()], model_name=settings.EMBEDDING_MODEL)[0]
    if kind == "videos" and isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        vectors = [v for v in Video.objects.filter(id__in=value, embedding__isnull=False).values_list("embedding", flat=True)]
        if not vectors:
            raise FeedError("none of the bucket's videos exist with an embedding", field="bucket")
        return normalize(np.mean(np.array(vectors, dtype=np.float32), axis=0))
    if kind == "topic" and isinstance(value, int) and not isinstance(value, bool):
        centroid = Topic.objects.filter(number=value).values_list("centroid", flat=True).first()
        if centroid is None:
            raise FeedError(f"no topic {value}", field="bucket")
        return np.asarray(centroid, dtype=np.float32)
    raise FeedError(f"bad bucket {bucket!r}: use a non-empty text, a list of video ids, a topic number, a commenter or a profile",
                    field="bucket")


# What the feed's use cases read of a session and of its algorithm when they lock it.
_LOCKED_SESSION_FIELDS = field_names(FeedSession, only={"id", "state", "batch_count", "cycle", "algorithm_id"})
_LOCKED_ALGORITHM_FIELDS = field_names(Algorithm, only={"id", "slug", "version", "batch_size"})


@contextlib.contextmanager
def _session_transaction():
    """A transaction on one session whose lock wait and statements are bounded.

    Running out of either rolls the transaction back and raises ``SessionBusy``; the timeouts
    are set for this transaction only (by ``_locked_session``, with its lock).
    """
    try:
        with transaction.atomic():
            yield
    except OperationalError as exc:
        if isinstance(exc.__cause__, (pg_errors.LockNotAvailable, pg_errors.QueryCanceled)):
            logger.warning("feed session busy: %s", exc)
            raise SessionBusy("this feed session is busy; send it again in a moment") from exc
        raise


def _locked_session(session_id, partner: str | None, *, with_bias: bool = False,
                    then: tuple[str, list] | None = None):
    """The session with its algorithm, the session row locked until the transaction ends
    (``_session_transaction``); only ``partner``'s sessions are found. ``with_bias`` reads
    ``bias_vector`` too (what a batch needs), in pgvector's binary form. With ``then`` (a
    statement and its parameters, e.g. ``_earlier_signal_and_served_video``) it returns
    ``(session, that statement's one row)``: the statement runs right after the lock is taken, in
    the same round trip (a view's ack waits on each one it makes), and so sees what was committed
    before the lock was granted.

    Only the session row is locked: a bare ``FOR UPDATE`` would also lock the joined algorithm
    row and serialise every session of that algorithm (and the operator's edits). Every view and
    every batch starts here, so the statement is written out, with the transaction's timeouts
    in the same round trip; the fields it does not read are deferred (reading one, e.g.
    ``bias_vector``, loads it).
    """
    try:
        session_id = uuid.UUID(str(session_id))
    except ValueError:
        raise SessionNotFound(f"no feed session {session_id}") from None
    then_sql, then_params = then or ("", [])
    with connection.cursor() as cursor:
        # Statements of one execute run one after the other, each with a snapshot of its own:
        # ``then`` reads after the lock is granted.
        cursor.execute(
            f"""SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true);
                SELECT {select_list("s", _LOCKED_SESSION_FIELDS)}, {select_list("a", _LOCKED_ALGORITHM_FIELDS)},
                       {"vector_send(s.bias_vector)" if with_bias else "NULL"}
                  FROM {FeedSession._meta.db_table} s JOIN {Algorithm._meta.db_table} a ON a.id = s.algorithm_id
                 WHERE s.id = %s AND s.partner IS NOT DISTINCT FROM %s FOR UPDATE OF s{";" if then else ""}
                {then_sql}""",
            [str(settings.FEED_LOCK_TIMEOUT_MS), str(settings.FEED_STATEMENT_TIMEOUT_MS), session_id, partner,
             *then_params],
        )
        cursor.nextset()
        row = cursor.fetchone()
        if then:
            cursor.nextset()
            then_row = cursor.fetchone()
    if row is None:
        raise SessionNotFound(f"no feed session {session_id}")
    split = len(_LOCKED_SESSION_FIELDS)
    session = from_row(FeedSession, _LOCKED_SESSION_FIELDS, row[:split])
    session.algorithm = from_row(Algorithm, _LOCKED_ALGORITHM_FIELDS, row[split:-1])
    if with_bias:
        session.bias_vector = None if row[-1] is None else vector_from_bytes(row[-1])
    return (session, then_row) if then else session


def _blueprint_of(session: FeedSession) -> machine.Blueprint:
    """The algorithm of a session from ``_locked_session``, whose version was read with the lock."""
    return load_blueprint(session.algorithm_id, version=session.algorithm.version)


def _current_state(session: FeedSession, blueprint: machine.Blueprint) -> str:
    """The session's state, or the initial one if an operator removed the state it was in."""
    if session.state in {s.name for s in blueprint.states}:
        return session.state
    logger.warning("session %s was in state %r, which %s no longer has; restarting at %r",
                   session.id, session.state, session.algorithm.slug, blueprint.initial)
    return blueprint.initial


# --- the batch's SQL ---------------------------------------------------------------------------
# A batch is served every few views, so its statements are written out: on a small machine an
# ORM query costs about 1 ms of Python, several times the statement itself (bench/batch.py).

def _history(session: FeedSession, blueprint: machine.Blueprint, last_n: int,
             reconsider: frozenset[int] = frozenset(), *,
             tags_for: VideoCatalog | None = None) -> tuple[list[WeightedSignal], frozenset[int], list[int]]:
    """What the session has done, in one statement: its last ``last_n`` signals that carry a
    vector (positive or negative), oldest first, weighted by the algorithm as it is now and with
    their video and its creator (evidence by hashtags; the per-creator cap's ``creator_trust``), the
    videos served in its current cycle (history exclusion; a card withdrawn before anyone saw it
    goes back to the pool once the viewer has viewed a card past its place: until then the
    client may still be showing it, having refused the replacement), and the creators of the last
    batch-size videos served in serving order, but those in ``reconsider`` (being ranked again):
    the per-creator cap counts them. With ``tags_for``, the hashtags of the signals' videos (what
    tag evidence weighs) are read too and kept there (``VideoCatalog.keep_tags``)."""
    specs = {s.name: s for s in blueprint.signals if s.polarity != machine.NEUTRAL}
    tags = "NULL, NULL"
    if tags_for is not None:
        tags = f"""(SELECT json_agg(json_build_array(r.video_id, {tags_of("r.video_id")}))
                      FROM (SELECT DISTINCT video_id FROM recent) r), {catalog_size()}"""
    # Prepared (and read in binary: 30 vectors), the limits written into the text (``prepared_rows``).
    [row] = prepared_rows(
        f"""WITH recent AS (
                SELECT s.id, s.type, vector_send(v.embedding) AS vector, v.creator_id, s.video_id
                  FROM {Signal._meta.db_table} s JOIN {Video._meta.db_table} v ON v.id = s.video_id
                 WHERE s.session_id = %s AND s.type = ANY(%s) AND v.embedding IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM {Signal._meta.db_table} u WHERE u.undoes_id = s.id)
                 ORDER BY s.id DESC LIMIT {int(last_n)}
            )
            SELECT (SELECT array_agg(type ORDER BY id) FROM recent),
                   (SELECT array_agg(vector ORDER BY id) FROM recent),
                   (SELECT array_agg(creator_id ORDER BY id) FROM recent),
                   (SELECT array_agg(video_id ORDER BY id) FROM recent),
                   ARRAY(SELECT i.video_id FROM {Impression._meta.db_table} i
                          WHERE i.session_id = %s AND i.cycle = %s
                            AND (NOT i.withdrawn
                                 OR EXISTS (SELECT 1 FROM {Signal._meta.db_table} s
                                             WHERE s.session_id = i.session_id AND s.video_id = i.video_id)
                                 OR ARRAY[i.batch_number, i.position] > (
                                        SELECT coalesce(max(ARRAY[r.batch_number, r.position]), ARRAY[0, 0])
                                          FROM {Impression._meta.db_table} r
                                          JOIN {Signal._meta.db_table} s
                                            ON s.session_id = r.session_id AND s.video_id = r.video_id
                                         WHERE r.session_id = %s AND NOT r.withdrawn))),
                   ARRAY(SELECT v.creator_id FROM {Impression._meta.db_table} i
                           JOIN {Video._meta.db_table} v ON v.id = i.video_id
                          WHERE i.session_id = %s AND NOT i.withdrawn AND NOT (i.video_id = ANY(%s::bigint[]))
                          ORDER BY i.batch_number DESC, i.position DESC LIMIT {int(session.algorithm.batch_size)}),
                   {tags}""",
        [session.pk, list(specs), session.pk, session.cycle, session.pk, session.pk, array_literal(reconsider)],
        binary=True,
    )
    kinds, vectors, signal_creators, signal_videos, seen, recent_creators, video_tags, size = row
    if tags_for is not None:
        tags_for.keep_tags(video_tags or (), size)
    signals = [
        WeightedSignal(vector_from_bytes(vector), specs[kind].weight, specs[kind].polarity, creator=creator,
                       video=video)
        for kind, vector, creator, video in zip(kinds or (), vectors or (), signal_creators or (), signal_videos or ())
    ]
    return signals, frozenset(seen), list(recent_creators)


#: Serving a video whose card was withdrawn before anyone saw it (``revise_upcoming``) takes its
#: impression row back (one row per video and cycle), at its new place.
_TAKE_BACK_WITHDRAWN = """ON CONFLICT (session_id, cycle, video_id) DO UPDATE
                       SET batch_number = EXCLUDED.batch_number, position = EXCLUDED.position,
                           source = EXCLUDED.source, similarity = EXCLUDED.similarity, state = EXCLUDED.state,
                           batch_type = EXCLUDED.batch_type, score = EXCLUDED.score,
                           score_parts = EXCLUDED.score_parts, withdrawn = false, created_at = EXCLUDED.created_at"""


def _score_columns(candidates) -> tuple[list[float | None], list[str | None]]:
    """The ranking's score and its parts of each candidate, as the impression columns take them
    (parts as JSON text; None where the ranking gave no score)."""
    candidates = list(candidates)
    return ([None if c.score is None else float(c.score) for c in candidates],
            [json.dumps({k: float(v) for k, v in c.parts.items()}) if c.parts else None for c in candidates])


def _record_batch(session: FeedSession, number: int, state: str, batch_type: str, picked, build_ms: float) -> None:
    """Store the batch's impressions (with their score parts), its row (``ServedBatch``: the
    state that built it and how long that took) and the session's progress, in one statement.

    The statement also turns off ``synchronous_commit`` for the rest of the transaction: a batch
    lost to a crash in the next few hundred ms is served afresh, not worth waiting for the WAL
    flush (signals, which must not be lost, keep waiting for it).
    """
    now = timezone.now()
    scores, parts = _score_columns(c for c, _ in picked)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH served AS (
                    INSERT INTO {Impression._meta.db_table}
                           (session_id, video_id, position, cycle, source, similarity, score, score_parts,
                            batch_number, state, batch_type, created_at)
                    SELECT %s, video_id, position, cycle, source, similarity, score, parts::jsonb, %s, %s, %s, %s
                      FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::text[], %s::float8[], %s::float8[],
                                  %s::text[])
                           AS batch(video_id, position, cycle, source, similarity, score, parts)
                    {_TAKE_BACK_WITHDRAWN}
                ), batch_row AS (
                    INSERT INTO {ServedBatch._meta.db_table}
                           (session_id, number, state, batch_type, next_state, size, build_ms, created_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (session_id, number) DO NOTHING
                )
                UPDATE {FeedSession._meta.db_table} SET state = %s, batch_count = %s, cycle = %s, updated_at = %s
                 WHERE id = %s
             RETURNING set_config('synchronous_commit', 'off', true)""",
            [session.pk, number, state, batch_type, now,
             [c.id for c, _ in picked], list(range(len(picked))), [cycle for _, cycle in picked],
             [c.source for c, _ in picked], [c.similarity for c, _ in picked], scores, parts,
             session.pk, number, state, batch_type, session.state, len(picked), build_ms, now,
             session.state, session.batch_count, session.cycle, now, session.pk],
        )


def _pick(session: FeedSession, blueprint: machine.Blueprint, state: machine.StateSpec, size: int,
          rng: np.random.Generator, *, also_seen: frozenset[int] = frozenset(),
          reconsider: frozenset[int] = frozenset()) -> list[tuple[Candidate, int]]:
    """``size`` videos for the session as ``state`` ranks them now, each with the history cycle
    it belongs to; none the session was served in its current cycle (but those in
    ``reconsider``: served, not yet shown), nor in ``also_seen``.

    When the viewer has seen the whole catalog, the session starts a new cycle of history
    (``session.cycle`` is advanced; the caller stores it) to fill the batch.
    """
    params = state.batch_params
    # MMR, evidence ranking and the creator cap read the vectors (and creators) of what the
    # searches found: read them with the searches. Evidence ranking and region exploration
    # read those of a random sample too: read them with the draws. Tag evidence reads the
    # hashtags of all of those and of the signals' videos: read them with each.
    weighs_tags = params.score_last_n > 0 and params.tag_weight > 0
    catalog = VideoCatalog(vectors_with_search=params.apply_mmr or params.score_last_n > 0 or params.creator_cap > 0,
                           vectors_with_draws=params.score_last_n > 0 or params.explore_regions,
                           tags_with_reads=weighs_tags)
    signals, seen, recent_creators = _history(session, blueprint, max(params.last_n, params.score_last_n), reconsider,
                                              tags_for=catalog if weighs_tags else None)
    seen = (seen - reconsider) | (also_seen - reconsider)
    bias = []
    if session.bias_vector is not None:
        # The bucket is the session's first evidence in every state (it used to steer only
        # ``biased`` states, so the default algorithm ignored it), as strong as the strongest signal.
        strongest = max((s.weight for s in blueprint.signals if s.polarity > 0), default=1.0)
        signals = seeded_with_bias(signals, [np.asarray(session.bias_vector, dtype=np.float32)], strongest)
        if state.batch_type == BIASED:
            bias = [np.asarray(session.bias_vector, dtype=np.float32)]
    timings: dict[str, float] = {}
    with one_blas_thread():  # small products: spinning BLAS threads cost more than they do
        picked = [(c, session.cycle) for c in build_batch(state.batch_type, params, catalog, signals, size, seen, rng,
                                                          bias, recent_creators=recent_creators, timings=timings)]
        if len(picked) < size:
            session.cycle += 1
            chosen = frozenset(c.id for c, _ in picked) | also_seen
            picked += [(c, session.cycle) for c in build_batch(
                state.batch_type, params, catalog, signals, size - len(picked), chosen, rng, bias,
                recent_creators=recent_creators, timings=timings)]
    logger.debug("session %s: %s picked %d in %s", session.id, state.name, len(picked),
                 ", ".join(f"{name} {ms:.1f} ms" for name, ms in timings.items()))
    return picked


def next_batch(session_id, *, after: int | None = None, partner: str | None = None) -> Batch:
    """Serve the next batch with the current state's params, then follow the BATCH edge.

    ``after`` is the last batch the client holds. When the session has already served the one
    after it (the same refill request, sent again after a reconnect or racing itself), that
    batch is returned as it was served and nothing changes; the check is made under the
    session's lock, so two such requests at once serve one batch.
    """
    started = time.perf_counter()
    with _session_transaction():
        session = _locked_session(session_id, partner, with_bias=True)
        if after is not None and session.batch_count == after + 1:
            return _served_batch(session)
        blueprint = _blueprint_of(session)
        state_name = _current_state(session, blueprint)
        state = blueprint.state(state_name)
        # Seeded by session and batch number: the same batch can be rebuilt to explain it.
        rng = np.random.default_rng([session.id.int % 2**63, session.batch_count])
        picked = _pick(session, blueprint, state, session.algorithm.batch_size, rng)

        build_ms = (time.perf_counter() - started) * 1000
        number = session.batch_count + 1
        next_state = machine.step(blueprint, state_name, machine.BATCH)
        session.state, session.batch_count = next_state, number
        _record_batch(session, number, state_name, state.batch_type, picked, build_ms)
        _publish_batch(session, number, state_name, state.batch_type, next_state, len(picked), build_ms)

    videos = videos_for_display(c.id for c, _ in picked)
    items = [ServedItem(videos[c.id], i, c.source, c.similarity) for i, (c, _) in enumerate(picked)]
    return Batch(number, state_name, next_state, state.batch_type, items)


def _served_batch(session: FeedSession) -> Batch:
    """The session's latest batch as it was served, with the cards that replaced any of it since
    (``revise_upcoming``) in place of those."""
    impressions = list(Impression.objects.filter(session=session, batch_number=session.batch_count, withdrawn=False)
                       .order_by("position"))
    if not impressions:  # an empty batch (nothing left to serve): its row says how it was served
        served = ServedBatch.objects.get(session_id=session.pk, number=session.batch_count)
        return Batch(session.batch_count, served.state, session.state, served.batch_type, [])
    videos = videos_for_display(i.video_id for i in impressions)
    items = [ServedItem(videos[i.video_id], i.position, i.source, i.similarity) for i in impressions]
    return Batch(session.batch_count, impressions[0].state, session.state, impressions[0].batch_type, items)


def revise_upcoming(session_id, *, viewed_video: int, partner: str | None = None) -> list[RevisedCard]:
    """Re-rank the cards the viewer has not reached yet, now that they left ``viewed_video``
    (its view is recorded): a batch asked for ahead of time was built before the last views.

    Among the session's live (not withdrawn) impressions in (batch, position) order, the first
    after ``viewed_video``'s is on screen now and stays; the later ones with no signal yet are
    ranked again by the current state (``_pick``, which may keep them: they compete with every
    video not yet shown). A card whose place goes to another video is withdrawn, kept so that a
    view of it (the client showed it anyway) is still accepted; a withdrawn video nobody saw may
    be served again later (``_history``), so a revision never uses up the catalog. Replacements
    take the batch numbers and positions of the cards they replace; the state machine does not
    move.

    Returns the new cards in order; none (and nothing written) when there is nothing to replace.
    """
    with _session_transaction():
        session = _locked_session(session_id, partner, with_bias=True)
        signal_count, upcoming, ahead = _upcoming(session, viewed_video)
        if not upcoming:
            return []
        blueprint = _blueprint_of(session)
        state_name = _current_state(session, blueprint)
        state = blueprint.state(state_name)
        # Seeded by session, batch and signal count: a seeded run revises the same way every time.
        rng = np.random.default_rng([session.id.int % 2**63, session.batch_count, signal_count])
        picked = _pick(session, blueprint, state, len(upcoming), rng, also_seen=ahead,
                       reconsider=frozenset(video for *_, video in upcoming))
        replaced = [((row, batch, position), pick) for (row, batch, position, video), pick in zip(upcoming, picked)
                    if pick[0].id != video]
        if not replaced:
            return []
        _record_revision(session, state_name, state.batch_type, replaced)

    videos = videos_for_display(c.id for _, (c, _) in replaced)
    return [
        RevisedCard(batch, position, state_name, state.batch_type,
                    ServedItem(videos[c.id], position, c.source, c.similarity))
        for (_, batch, position), (c, _) in replaced
    ]


# A view is followed by a revision, so these are written out as the batch's are (see above).

def _upcoming(session: FeedSession, viewed_video: int) -> tuple[int, list[tuple[int, int, int, int]], frozenset[int]]:
    """``(how many signals the session has, the impressions to rank again as (id, batch number,
    position, video) in order, the videos of every live impression after viewed_video's)``, in
    one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH viewed AS (
                    SELECT batch_number, position FROM {Impression._meta.db_table}
                     WHERE session_id = %s AND video_id = %s ORDER BY id DESC LIMIT 1
                ), later AS (
                    SELECT i.id, i.batch_number, i.position, i.video_id,
                           row_number() OVER (ORDER BY i.batch_number, i.position) AS n
                      FROM {Impression._meta.db_table} i
                      JOIN viewed v ON (i.batch_number, i.position) > (v.batch_number, v.position)
                     WHERE i.session_id = %s AND NOT i.withdrawn
                )
                SELECT (SELECT count(*) FROM {Signal._meta.db_table} WHERE session_id = %s),
                       (SELECT array_agg(ARRAY[l.id, l.batch_number, l.position, l.video_id] ORDER BY l.n) FROM later l
                         WHERE l.n > 1 AND NOT EXISTS (SELECT 1 FROM {Signal._meta.db_table} s
                                                        WHERE s.session_id = %s AND s.video_id = l.video_id)),
                       ARRAY(SELECT video_id FROM later)""",
            [session.pk, viewed_video, session.pk, session.pk, session.pk],
        )
        signal_count, upcoming, ahead = cursor.fetchone()
    return signal_count, [tuple(row) for row in upcoming or ()], frozenset(ahead)


def _record_revision(session: FeedSession, state: str, batch_type: str, replaced) -> None:
    """Withdraw the replaced impressions, then store their replacements and the session's history
    cycle; like a batch, it does not wait for the WAL flush. A replacement may be a video
    withdrawn earlier (never seen) or one moving to another place: its row is taken back."""
    now = timezone.now()
    scores, parts = _score_columns(c for _, (c, _) in replaced)
    with connection.cursor() as cursor:
        # Two statements: one statement may not update a row twice (withdraw it, then take it back).
        cursor.execute(
            f"""UPDATE {Impression._meta.db_table} SET withdrawn = true WHERE id = ANY(%s);
                WITH revised AS (
                    INSERT INTO {Impression._meta.db_table}
                           (session_id, video_id, batch_number, position, cycle, source, similarity, score,
                            score_parts, state, batch_type, withdrawn, created_at)
                    SELECT %s, video_id, batch_number, position, cycle, source, similarity, score, parts::jsonb,
                           %s, %s, false, %s
                      FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::int[], %s::text[], %s::float8[],
                                  %s::float8[], %s::text[])
                           AS revised(video_id, batch_number, position, cycle, source, similarity, score, parts)
                    {_TAKE_BACK_WITHDRAWN}
                )
                UPDATE {FeedSession._meta.db_table} SET cycle = %s, updated_at = %s WHERE id = %s
             RETURNING set_config('synchronous_commit', 'off', true)""",
            [[old for (old, _, _), _ in replaced],
             session.pk, state, batch_type, now,
             [c.id for _, (c, _) in replaced], [batch for (_, batch, _), _ in replaced],
             [position for (_, _, position), _ in replaced], [cycle for _, (_, cycle) in replaced],
             [c.source for _, (c, _) in replaced], [c.similarity for _, (c, _) in replaced], scores, parts,
             session.cycle, now, session.pk],
        )


def record_view(session_id, *, video_id: int, event_id: uuid.UUID | str, watched_ms: int,
                duration_ms: int | None = None, partner: str | None = None) -> SignalOutcome:
    """Turn a view's watch time into a signal with the algorithm's thresholds and apply it.

    ``duration_ms`` is the video's length as the client played it; without it the catalog's
    is used. It is stored with the signal, and relative (watch-ratio) thresholds judge
    ``watched_ms / duration_ms``.
    """
    if isinstance(watched_ms, bool) or not isinstance(watched_ms, int) or not 0 <= watched_ms <= MAX_WATCHED_MS:
        raise FeedError(f"watched_ms must be a whole number of milliseconds from 0 to {MAX_WATCHED_MS}",
                        field="watched_ms")
    if duration_ms is not None and (
        isinstance(duration_ms, bool) or not isinstance(duration_ms, int) or not 0 < duration_ms <= MAX_WATCHED_MS
    ):
        raise FeedError(f"duration_ms must be a whole number of milliseconds from 1 to {MAX_WATCHED_MS}",
                        field="duration_ms")
    return _record(session_id, partner, video_id, event_id, watched_ms=watched_ms, duration_ms=duration_ms)


def record_action(session_id, *, video_id: int, event_id: uuid.UUID | str, signal_type: str,
                  partner: str | None = None) -> SignalOutcome:
    """Apply an explicit action (LIKE, SHARE, FOLLOW_CREATOR, NOT_INTERESTED...)."""
    if not isinstance(signal_type, str) or not signal_type.strip():
        raise FeedError("type must name a signal type", field="type")
    return _record(session_id, partner, video_id, event_id, signal_type=signal_type.strip().upper())


#: How an undo is named on the event stream (it is no signal type of the blueprint's).
UNDO = "UNDO"
#: The actions an undo may withdraw (a share, once made, cannot be taken back).
UNDOABLE = frozenset({machine.LIKE, machine.FOLLOW_CREATOR, machine.NOT_INTERESTED})


def undo_action(session_id, *, event_id: uuid.UUID | str, undoes: uuid.UUID | str,
                partner: str | None = None) -> SignalOutcome:
    """Withdraw the action recorded for event ``undoes`` (an unlike, an unfollow): recorded as a
    row of its own (no type, ``undoes`` naming the action), applied once per ``event_id``.

    The withdrawn action stops counting as evidence (``_history`` skips it) and in the viewer's
    liked videos; the state machine does not step back (an edge taken stays taken, as a view's).
    Published once after commit like any applied signal, as ``UNDO`` (the monitor's event names
    the event it undoes), so the viewer's other tabs, the monitor and the metrics see it.
    Returns the state as it is (no signal).
    """
    try:
        event_id, undoes = uuid.UUID(str(event_id)), uuid.UUID(str(undoes))
    except ValueError:
        raise FeedError("event_id and undoes must be UUIDs", field="undoes") from None
    with _session_transaction():
        session = _locked_session(session_id, partner)
        earlier = Signal.objects.filter(session_id=session.pk, event_id=event_id).values_list(
            "state_after", flat=True).first()
        if earlier is not None:
            return SignalOutcome(None, earlier, duplicate=True)
        action = (Signal.objects.filter(session_id=session.pk, event_id=undoes)
                  .values("id", "type", "video_id", "undone_by").first())
        if action is None:
            # Not recorded (yet): the client sends an action before its undo, so it was refused.
            raise FeedError(f"no action {undoes} in this session to undo", field="undoes", code="not_found")
        if action["type"] not in UNDOABLE:
            raise FeedError(f"a {action['type'] or 'view'} cannot be undone; only {', '.join(sorted(UNDOABLE))}",
                            field="undoes", code="not_undoable")
        if action["undone_by"] is not None:
            raise FeedError(f"action {undoes} was already undone", field="undoes", code="already_undone")
        Signal.objects.create(session_id=session.pk, video_id=action["video_id"], type="", event_id=event_id,
                              state_before=session.state, state_after=session.state, undoes_id=action["id"])
        _publish_signal(session, action["video_id"], event_id, UNDO, None, session.state, session.state,
                        undoes=undoes)
    return SignalOutcome(None, session.state, duplicate=False)


def _record(session_id, partner, video_id, event_id, *, watched_ms: int | None = None,
            duration_ms: int | None = None, signal_type: str | None = None) -> SignalOutcome:
    try:
        event_id = uuid.UUID(str(event_id))
    except ValueError:
        raise FeedError("event_id must be a UUID", field="event_id") from None
    if isinstance(video_id, bool) or not isinstance(video_id, int) or not 0 < video_id < 2**63:
        raise FeedError(f"video must be a video id, not {video_id!r}", field="video")
    with _session_transaction():
        session, (earlier, served_duration_s, served_state) = _locked_session(
            session_id, partner, then=_earlier_signal_and_served_video(session_id, event_id, video_id))
        # Applied once: a resent event (after a reconnect, a retry) is acknowledged as it was.
        if earlier is not None:
            kind, state_after = earlier
            return SignalOutcome(kind or None, state_after, duplicate=True)
        if served_duration_s is None:
            raise FeedError(f"video {video_id} was never served in this session", field="video", code="not_served")
        if watched_ms is not None and watched_ms > max_watched_ms(served_duration_s):
            raise FeedError(
                f"watched_ms {watched_ms} is more than {MAX_WATCH_LOOPS} plays of this {served_duration_s} s video",
                field="watched_ms", code="out_of_range",
            )
        blueprint = _blueprint_of(session)
        state_before = _current_state(session, blueprint)
        if watched_ms is not None:
            # The catalog's duration when the client gave none (0 there means unknown).
            if duration_ms is None and served_duration_s > 0:
                duration_ms = served_duration_s * 1000
            signal = machine.watch_time_to_signal(watched_ms, blueprint.thresholds, duration_ms)
        else:
            signal = signal_type
            if signal not in blueprint.signal_names:
                raise FeedError(
                    f"unknown signal type {signal!r}; this algorithm knows {', '.join(blueprint.signal_names)}",
                    field="type",
                )
        state_after = machine.step(blueprint, state_before, signal)
        _record_signal(session, video_id, event_id, signal, watched_ms, duration_ms, state_before, state_after,
                       served_state)
        _publish_signal(session, video_id, event_id, signal, watched_ms, state_before, state_after)
    return SignalOutcome(signal, state_after, duplicate=False)


# --- the event stream ---------------------------------------------------------------------------
# Published from inside the use case's transaction, so they go out when (and only if) it commits.
# Message types name the subscribers' handlers: ``feed.state`` (the feed's sockets: the frame
# they forward is today's state frame), ``monitor.event`` (the live monitor). The metrics count
# the same events at the same moment (``feed.metrics``).

def _publish_signal(session: FeedSession, video_id: int, event_id: uuid.UUID, signal: str,
                    watched_ms: int | None, state_before: str, state_after: str, *,
                    undoes: uuid.UUID | None = None) -> None:
    monitor_event = {
        "type": "monitor.event", "kind": "signal", "session": str(session.pk),
        "algorithm": session.algorithm.slug, "video": video_id, "signal": signal, "watched_ms": watched_ms,
        "state_before": state_before, "state_after": state_after, "event_id": str(event_id),
        "at": timezone.now().isoformat(),
    }
    if undoes is not None:
        monitor_event["undoes"] = str(undoes)
    publish_on_commit([
        (session_group(session.pk), {
            "type": "feed.state", "state": state_after, "signal": signal, "event_id": str(event_id), "batch": None,
        }),
        (MONITOR_GROUP, monitor_event),
    ], then=lambda: metrics.count_signal(signal))


def _publish_batch(session: FeedSession, number: int, state: str, batch_type: str, next_state: str,
                   size: int, build_ms: float) -> None:
    algorithm = session.algorithm.slug
    publish_on_commit([
        (session_group(session.pk), {
            "type": "feed.state", "state": next_state, "signal": None, "event_id": None, "batch": number,
        }),
        (MONITOR_GROUP, {
            "type": "monitor.event", "kind": "batch", "session": str(session.pk), "algorithm": algorithm,
            "batch": number, "state": state, "batch_type": batch_type, "next_state": next_state, "size": size,
            "build_ms": round(build_ms, 1), "at": timezone.now().isoformat(),
        }),
    ], then=lambda: metrics.count_batch(algorithm, state, build_ms))


# Every view is a signal, so these are written out as the batch's are (see above).

def _earlier_signal_and_served_video(session_id, event_id: uuid.UUID, video_id: int) -> tuple[str, list]:
    """The statement (for ``_locked_session``'s ``then``) whose row is ``((type, state_after) of
    the signal already recorded for event_id, or None, the video's duration in seconds if the
    session was ever served it, else None, the state that served it (its latest impression's),
    else None)``."""
    return (
        f"""SELECT (SELECT ARRAY[type, state_after] FROM {Signal._meta.db_table}
                     WHERE session_id = %s AND event_id = %s),
                   served.duration_s, served.state
              FROM (SELECT 1) AS one
              LEFT JOIN LATERAL (SELECT v.duration_s, i.state FROM {Impression._meta.db_table} i
                                   JOIN {Video._meta.db_table} v ON v.id = i.video_id
                                  WHERE i.session_id = %s AND i.video_id = %s
                                  ORDER BY i.cycle DESC LIMIT 1) AS served ON true""",
        [session_id, event_id, session_id, video_id],
    )


def _record_signal(session: FeedSession, video_id: int, event_id: uuid.UUID, signal: str,
                   watched_ms: int | None, duration_ms: int | None, state_before: str, state_after: str,
                   served_state: str | None) -> None:
    """Store the signal (with the state that served its video) and the session's new state, in one
    statement."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH recorded AS (
                    INSERT INTO {Signal._meta.db_table}
                           (session_id, video_id, type, watched_ms, duration_ms, event_id, state_before,
                            state_after, served_state, created_at)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                )
                UPDATE {FeedSession._meta.db_table} SET state = %s, updated_at = %s WHERE id = %s""",
            [session.pk, video_id, signal, watched_ms, duration_ms, event_id, state_before, state_after,
             served_state or "", now, state_after, now, session.pk],
        )


# --- partner keys ---------------------------------------------------------------------------

#: The longest partner name a key is created under.
PARTNER_NAME_MAX_CHARS = PartnerKey._meta.get_field("name").max_length


def checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """``scopes`` in ``SCOPES`` order; refused if they name an unknown scope, or none."""
    named = {scope.strip() for scope in scopes if scope.strip()}
    if unknown := sorted(named - SCOPES.keys()):
        raise ServiceError(f"unknown scope {', '.join(map(repr, unknown))}: the scopes are {', '.join(SCOPES)}",
                           "scopes", code="unknown_scope")
    if not named:
        raise ServiceError(f"give at least one scope of {', '.join(SCOPES)}", "scopes", code="required")
    return tuple(scope for scope in SCOPES if scope in named)


def create_key(name: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> tuple[PartnerKey, str]:
    """A new key for partner ``name`` holding exactly ``scopes``: (the row, the key itself).

    The key is only ever known here: the row keeps its hash.
    """
    name = name.strip()
    if not name or len(name) > PARTNER_NAME_MAX_CHARS:
        raise ServiceError(f"the partner's name must be 1 to {PARTNER_NAME_MAX_CHARS} characters", "name")
    scopes = checked_scopes(scopes)
    return PartnerKey.objects.create_key(name=name, **{scope_field(s): s in scopes for s in SCOPES})
