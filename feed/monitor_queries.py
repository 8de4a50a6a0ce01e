"""The live monitor's figures over a recent window (15 minutes by default), read in a few statements.

Written out because a refresh runs every few seconds for every open monitor, against tables that
hold millions of signals and impressions: each statement is shaped to start from an index on the
window's time column (``signal_created_at``, ``impression_created_at``, ``servedbatch_created_at``,
``session_updated_at``, migration ``feed/0006_monitor``) so it reads only the window's rows, and
the ORM's aggregates would not say ``percentile_cont`` or ``GROUPING SETS``. ``bench/monitor.py`` times one refresh at 1M signals.

Definitions (the figures a test computes by hand):
- a session is active when it changed (a signal applied, a batch served) in the window;
- signals per minute: signals of each type recorded in each minute of the window (events that
  produced no signal are not counted), and each type's mean over the window's minutes;
- a view is a signal with a watch time; its state is the state that served the video
  (``Signal.served_state``, recorded with it; the session's state then, for older signals); mean
  watch time is the mean of ``watched_ms`` over views, skip rate the share of views whose signal
  is ``SKIP``; both per algorithm and state, and per algorithm;
- videos served most: impressions created in the window, withdrawn ones (never shown) left out;
- batch latency: ``ServedBatch.build_ms`` of the batches served in the window, p50 and p95
  (continuous percentiles).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from algorithms.models import Algorithm
from catalog.models import Video

from .models import FeedSession, Impression, ServedBatch, Signal

WINDOW = dt.timedelta(minutes=15)
TOP_VIDEOS = 10
SKIP = "SKIP"


@dataclass(frozen=True)
class ActiveSessions:
    algorithm: str
    state: str
    sessions: int


@dataclass(frozen=True)
class WatchFigures:
    algorithm: str
    state: str | None  # None: the algorithm's row over all its states
    views: int
    mean_watched_ms: float
    skip_rate: float


@dataclass(frozen=True)
class ServedVideo:
    video_id: int
    caption: str
    impressions: int


@dataclass(frozen=True)
class BatchLatency:
    batches: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class MonitorFigures:
    since: dt.datetime
    until: dt.datetime
    active_sessions: list[ActiveSessions]
    signal_types: list[str]
    #: (minute, {type: count}) for every minute of the window, oldest first
    signals_per_minute: list[tuple[dt.datetime, dict[str, int]]]
    #: type -> mean signals per minute over the window
    signal_rates: dict[str, float]
    watch_by_state: list[WatchFigures]
    watch_by_algorithm: list[WatchFigures]
    most_served: list[ServedVideo]
    latency: BatchLatency
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def signal_rows(self) -> list[tuple[dt.datetime, list[int]]]:
        """The per-minute counts as table rows, newest minute first, a count per ``signal_types``."""
        return [(minute, [counts.get(kind, 0) for kind in self.signal_types])
                for minute, counts in reversed(self.signals_per_minute)]


def monitor_figures(now: dt.datetime | None = None, window: dt.timedelta = WINDOW) -> MonitorFigures:
    until = now or timezone.now()
    since = until - window
    with connection.cursor() as cursor:
        active = _active_sessions(cursor, since, until)
        per_minute, types = _signals_per_minute(cursor, since, until)
        by_state, by_algorithm = _watch_figures(cursor, since, until)
        most_served = _most_served(cursor, since, until)
        latency = _batch_latency(cursor, since, until)
    minutes = _minutes(since, until)
    counts = {minute: {} for minute in minutes}
    for minute, kind, n in per_minute:
        counts.setdefault(minute, {})[kind] = n
    window_minutes = window.total_seconds() / 60
    rates = {kind: sum(c.get(kind, 0) for c in counts.values()) / window_minutes for kind in types}
    return MonitorFigures(
        since=since, until=until, active_sessions=active, signal_types=types,
        signals_per_minute=sorted(counts.items()), signal_rates=rates,
        watch_by_state=by_state, watch_by_algorithm=by_algorithm, most_served=most_served, latency=latency,
        totals={"sessions": sum(a.sessions for a in active), "signals": sum(n for *_, n in per_minute),
                "batches": latency.batches},
    )


def _minutes(since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """The minutes the window touches, as ``date_trunc('minute', ...)`` names them."""
    first = since.replace(second=0, microsecond=0)
    count = int((until - first).total_seconds() // 60) + 1
    return [first + dt.timedelta(minutes=i) for i in range(count)]


def _active_sessions(cursor, since, until) -> list[ActiveSessions]:
    cursor.execute(
        f"""SELECT a.slug, s.state, count(*)
              FROM {FeedSession._meta.db_table} s JOIN {Algorithm._meta.db_table} a ON a.id = s.algorithm_id
             WHERE s.updated_at >= %s AND s.updated_at <= %s
             GROUP BY a.slug, s.state ORDER BY a.slug, s.state""",
        [since, until],
    )
    return [ActiveSessions(*row) for row in cursor.fetchall()]


def _signals_per_minute(cursor, since, until) -> tuple[list[tuple[dt.datetime, str, int]], list[str]]:
    cursor.execute(
        f"""SELECT date_trunc('minute', created_at) AS minute, type, count(*)
              FROM {Signal._meta.db_table}
             WHERE created_at >= %s AND created_at <= %s AND type <> ''
             GROUP BY 1, 2 ORDER BY 1, 2""",
        [since, until],
    )
    rows = cursor.fetchall()
    return rows, sorted({kind for _, kind, _ in rows})


def _watch_figures(cursor, since, until) -> tuple[list[WatchFigures], list[WatchFigures]]:
    # The serving state is stored with each signal (``Signal.served_state``), so this reads the
    # window's signals and their sessions and nothing per view; older signals fall back to the
    # state the session was in.
    cursor.execute(
        f"""WITH views AS (
                SELECT a.slug AS algorithm, s.watched_ms, s.type,
                       coalesce(nullif(s.served_state, ''), s.state_before) AS state
                  FROM {Signal._meta.db_table} s
                  JOIN {FeedSession._meta.db_table} fs ON fs.id = s.session_id
                  JOIN {Algorithm._meta.db_table} a ON a.id = fs.algorithm_id
                 WHERE s.created_at >= %s AND s.created_at <= %s AND s.watched_ms IS NOT NULL
            )
            SELECT algorithm, state, GROUPING(state) = 1 AS whole_algorithm, count(*),
                   avg(watched_ms)::float8, avg((type = %s)::int)::float8
              FROM views GROUP BY GROUPING SETS ((algorithm, state), (algorithm))
             ORDER BY algorithm, whole_algorithm DESC, state""",
        [since, until, SKIP],
    )
    by_state, by_algorithm = [], []
    for algorithm, state, whole, views, mean_ms, skip_rate in cursor.fetchall():
        row = WatchFigures(algorithm, None if whole else state, views, mean_ms, skip_rate)
        (by_algorithm if whole else by_state).append(row)
    return by_state, by_algorithm


def _most_served(cursor, since, until) -> list[ServedVideo]:
    cursor.execute(
        f"""SELECT served.video_id, v.caption, served.n
              FROM (SELECT video_id, count(*) AS n FROM {Impression._meta.db_table}
                     WHERE created_at >= %s AND created_at <= %s AND NOT withdrawn
                     GROUP BY video_id ORDER BY n DESC, video_id LIMIT %s) served
              JOIN {Video._meta.db_table} v ON v.id = served.video_id
             ORDER BY served.n DESC, served.video_id""",
        [since, until, TOP_VIDEOS],
    )
    return [ServedVideo(*row) for row in cursor.fetchall()]


def _batch_latency(cursor, since, until) -> BatchLatency:
    cursor.execute(
        f"""SELECT count(*),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY build_ms),
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY build_ms)
              FROM {ServedBatch._meta.db_table} WHERE created_at >= %s AND created_at <= %s""",
        [since, until],
    )
    return BatchLatency(*cursor.fetchone())
