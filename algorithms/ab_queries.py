"""The A/B comparison's figures, aggregated in PostgreSQL.

Written out because each figure is a count, sum and sum of squares over a window of sessions,
their view signals and their impressions, and the per-session impression counts must be
aggregated again per algorithm: one statement with ``FILTER`` clauses and a lateral count does
what the ORM would spell as several subqueries, and no row leaves the database
(``ab_stats`` turns the sums into means, rates and intervals).

A session belongs to the window when it *started* in it (A/B cohorts are sessions, each on one
algorithm for life); its views and impressions count whenever they happened. A view is a signal
with a watch time (``watched_ms``); explicit actions (likes...) are not views.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection

from algorithms import machine
from algorithms.models import Algorithm


@dataclass(frozen=True)
class AlgorithmSums:
    """What the database adds up for one algorithm over a window."""

    algorithm_id: int
    slug: str
    name: str
    is_default: bool
    traffic_share: int
    sessions: int
    impressions: int  # summed over the sessions (not withdrawn)
    impressions_squared: int  # sum over sessions of (impressions per session)^2
    views: int
    watched_ms: float
    watched_ms_squared: float
    skips: int
    long_views: int


def _tables() -> dict[str, str]:
    from feed.models import FeedSession, Impression, Signal  # the feed's rows, read only

    return {"session": FeedSession._meta.db_table, "impression": Impression._meta.db_table,
            "signal": Signal._meta.db_table, "algorithm": Algorithm._meta.db_table}


def algorithm_sums(start: datetime, end: datetime) -> list[AlgorithmSums]:
    """Every algorithm's sums over the sessions started in ``[start, end)`` (zeros when it had
    none), the default first."""
    t = _tables()
    sql = f"""
        WITH cohort AS (
            SELECT id, algorithm_id FROM {t['session']} WHERE created_at >= %(start)s AND created_at < %(end)s
        ), lengths AS (
            SELECT c.algorithm_id, count(*) AS sessions, sum(k.n) AS total, sum(k.n * k.n) AS squares
              FROM cohort c
              CROSS JOIN LATERAL (SELECT count(*) AS n FROM {t['impression']} i
                                   WHERE i.session_id = c.id AND NOT i.withdrawn) k
             GROUP BY c.algorithm_id
        ), views AS (
            SELECT c.algorithm_id, count(*) AS n, sum(s.watched_ms::float8) AS total,
                   sum(s.watched_ms::float8 * s.watched_ms) AS squares,
                   count(*) FILTER (WHERE s.type = %(skip)s) AS skips,
                   count(*) FILTER (WHERE s.type = %(high)s) AS long_views
              FROM cohort c JOIN {t['signal']} s ON s.session_id = c.id
             WHERE s.watched_ms IS NOT NULL
             GROUP BY c.algorithm_id
        )
        SELECT a.id, a.slug, a.name, a.is_default, a.traffic_share,
               coalesce(l.sessions, 0), coalesce(l.total, 0), coalesce(l.squares, 0),
               coalesce(v.n, 0), coalesce(v.total, 0), coalesce(v.squares, 0),
               coalesce(v.skips, 0), coalesce(v.long_views, 0)
          FROM {t['algorithm']} a
          LEFT JOIN lengths l ON l.algorithm_id = a.id
          LEFT JOIN views v ON v.algorithm_id = a.id
         ORDER BY a.is_default DESC, a.name, a.id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"start": start, "end": end, "skip": machine.SKIP, "high": machine.HIGH_ATTN})
        rows = cursor.fetchall()
    return [AlgorithmSums(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), int(r[7]), int(r[8]),
                          float(r[9]), float(r[10]), int(r[11]), int(r[12])) for r in rows]


@dataclass(frozen=True)
class TimeBin:
    """One algorithm's views in one time bin."""

    algorithm_id: int
    starts: datetime
    views: int
    watched_ms: float
    skips: int


def views_over_time(start: datetime, end: datetime, step: timedelta) -> list[TimeBin]:
    """Views of sessions started in ``[start, end)``, binned by when they were made (bins of
    ``step`` from ``start``), per algorithm; bins without views are absent."""
    t = _tables()
    sql = f"""
        SELECT c.algorithm_id, date_bin(%(step)s, s.created_at, %(start)s) AS bin, count(*),
               sum(s.watched_ms::float8), count(*) FILTER (WHERE s.type = %(skip)s)
          FROM {t['session']} c JOIN {t['signal']} s ON s.session_id = c.id
         WHERE c.created_at >= %(start)s AND c.created_at < %(end)s AND s.watched_ms IS NOT NULL
         GROUP BY 1, 2 ORDER BY 2, 1
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, {"start": start, "end": end, "step": step, "skip": machine.SKIP})
        rows = cursor.fetchall()
    return [TimeBin(r[0], r[1], int(r[2]), float(r[3]), int(r[4])) for r in rows]
