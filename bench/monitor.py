"""Benchmark of one live-monitor refresh (``feed.monitor_queries.monitor_figures`` and the fragment
the admin polls) over a feed with a million signals.

Fills a throwaway database (``tokfeed_bench_monitor`` on the embedded server; its feed tables
are emptied first) with the real catalog's videos and, written by SQL from ``generate_series``
(seeded): ``--sessions`` sessions on the shipped algorithms, ``--signals`` signals with one
impression each, a served batch per ``BATCH_SIZE`` impressions. Timestamps spread uniformly over
``--days`` days, but a ``--recent-share`` of every table falls inside the monitor's 15-minute
window (with the default 5 %, 50 000 signals in 15 minutes, ~55 a second: a busy feed), so the
statements have a real window to read, not an empty one. Rows are written in time order, as a
running feed writes them (so a window's rows share pages, as they do in production).

Then, after a warm-up, times ``--refreshes`` refreshes (the five statements, and the fragment
rendered as the admin serves it) and each statement alone, and prints each statement's plan's
first line (an index scan on the window's time column is the point).

    .venv/bin/python bench/monitor.py [--signals 1000000] [--sessions 20000] [--days 7]
                                      [--recent-share 0.05] [--refreshes 30]
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time

import numpy as np

from common import import_real_catalog, machine, print_table, setup_django, write_json

BATCH_SIZE = 5
DB_NAME = "tokfeed_bench_monitor"


def percentiles(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95)),
            "mean_ms": statistics.fmean(values)}


def fill(signals: int, sessions: int, days: float, recent_share: float, now: dt.datetime) -> dict:
    """Write the feed's rows by SQL; returns the seconds each table took."""
    from django.db import connection

    from algorithms.models import Algorithm, State
    from catalog.models import Video
    from feed.models import FeedSession, Impression, ServedBatch, Signal

    algorithms = list(Algorithm.objects.order_by("id").values_list("id", flat=True))
    states = {a: list(State.objects.filter(algorithm_id=a).order_by("name").values_list("name", flat=True))
              for a in algorithms}
    videos = list(Video.objects.order_by("id").values_list("id", flat=True))
    # One flat array of (algorithm, state) pairs: session i takes pair i mod len.
    pairs = [(a, s) for a in algorithms for s in states[a]]
    timings = {}
    spread_s, window_s = days * 86400, 15 * 60 - 5
    # A row's age: within the window for the recent share, else uniform over the whole span.
    age = f"(CASE WHEN random() < {recent_share} THEN random() * {window_s} ELSE random() * {spread_s} END)"
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Signal._meta.db_table}, {Impression._meta.db_table}, "
                       f"{ServedBatch._meta.db_table}, {FeedSession._meta.db_table} CASCADE")
        cursor.execute("SELECT setseed(0.42)")
        started = time.perf_counter()
        cursor.execute(
            f"""INSERT INTO {FeedSession._meta.db_table}
                       (id, anonymous_key, algorithm_id, state, bucket, batch_count, cycle, created_at, updated_at)
                SELECT md5('s' || i)::uuid, 'bench', (%s::bigint[])[1 + i %% %s], (%s::text[])[1 + i %% %s], '{{}}',
                       0, 0, %s - make_interval(secs => {spread_s}), %s - make_interval(secs => {age})
                  FROM generate_series(0, %s - 1) AS i""",
            [[a for a, _ in pairs], len(pairs), [s for _, s in pairs], len(pairs), now, now, sessions],
        )
        timings["sessions_s"] = time.perf_counter() - started
        started = time.perf_counter()
        # Signal i belongs to session i mod S; it is that session's (i div S)-th, which is also the
        # history cycle of its impression (so (session, cycle, video) stays unique).
        cursor.execute(
            f"""CREATE TEMP TABLE bench_events AS
                SELECT i, md5('s' || (i %% %s))::uuid AS session_id, i / %s AS k,
                       (%s::bigint[])[1 + (i * 7919 + (i / %s) * 13) %% %s] AS video_id,
                       %s - make_interval(secs => {age}) AS at,
                       (ARRAY['HIGH_ATTN','MID_ATTN','LOW_ATTN','SKIP','SKIP','SKIP','LIKE'])[1 + floor(random() * 7)::int]
                           AS type,
                       (random() * 20000)::int AS watched_ms
                  FROM generate_series(0::bigint, %s - 1) AS i""",
            [sessions, sessions, videos, sessions, len(videos), now, signals],
        )
        cursor.execute(
            f"""INSERT INTO {Impression._meta.db_table}
                       (session_id, video_id, batch_number, position, cycle, state, batch_type, source, similarity,
                        withdrawn, created_at)
                SELECT session_id, video_id, k / {BATCH_SIZE} + 1, mod(k, {BATCH_SIZE}), k, 'H', 'personalized', 'ann',
                       0.5, false, at - interval '5 seconds'
                  FROM bench_events ORDER BY at"""
        )
        timings["impressions_s"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(
            f"""INSERT INTO {Signal._meta.db_table}
                       (session_id, video_id, type, watched_ms, duration_ms, event_id, state_before, state_after,
                        served_state, created_at)
                SELECT session_id, video_id, type, CASE WHEN type = 'LIKE' THEN NULL ELSE watched_ms END, 20000,
                       md5('e' || i)::uuid, 'H', 'H', 'H', at
                  FROM bench_events ORDER BY at"""
        )
        timings["signals_s"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(
            f"""INSERT INTO {ServedBatch._meta.db_table}
                       (session_id, number, state, batch_type, next_state, size, build_ms, created_at)
                SELECT session_id, k / {BATCH_SIZE} + 1, 'H', 'personalized', 'M', {BATCH_SIZE},
                       5 + random() * 40, at - interval '5 seconds'
                  FROM bench_events WHERE mod(k, {BATCH_SIZE}) = 0 ORDER BY at"""
        )
        timings["batches_s"] = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_events")
        started = time.perf_counter()
        for model in (FeedSession, Impression, Signal, ServedBatch):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        counts = {}
        for model in (FeedSession, Impression, Signal, ServedBatch):
            cursor.execute(f"SELECT count(*) FROM {model._meta.db_table}")
            counts[model._meta.model_name] = cursor.fetchone()[0]
    return {"timings": {k: round(v, 1) for k, v in timings.items()}, "rows": counts}


STATEMENTS = ["_active_sessions", "_signals_per_minute", "_watch_figures", "_most_served", "_batch_latency"]


def plans(now: dt.datetime) -> dict[str, str]:
    """The index scans in each statement's plan (its first line when it has none)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from feed import monitor_queries

    found = {}
    since = now - monitor_queries.WINDOW
    for name in STATEMENTS:
        with CaptureQueriesContext(connection) as captured, connection.cursor() as cursor:
            getattr(monitor_queries, name)(cursor, since, now)
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + captured.captured_queries[0]["sql"])
            lines = [row[0] for row in cursor.fetchall()]
        scans = sorted({line.split("->")[-1].strip().split("  ")[0] for line in lines if "Index" in line})
        found[name] = "; ".join(scans) or lines[0].strip()
    return found


def time_refreshes(now: dt.datetime, refreshes: int) -> tuple[dict, dict, dict]:
    from django.db import connection
    from django.template.loader import render_to_string

    from feed import monitor_queries

    since = now - monitor_queries.WINDOW
    for _ in range(3):  # warm-up: the window's pages in PostgreSQL's buffers, as on a running server
        monitor_queries.monitor_figures(now=now)
    whole, rendered = [], []
    for _ in range(refreshes):
        started = time.perf_counter()
        figures = monitor_queries.monitor_figures(now=now)
        whole.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        render_to_string("admin/feed/monitor/_figures.html", {"figures": figures})
        rendered.append((time.perf_counter() - started) * 1000)
    each = {}
    for name in STATEMENTS:
        times = []
        for _ in range(refreshes):
            with connection.cursor() as cursor:
                started = time.perf_counter()
                getattr(monitor_queries, name)(cursor, since, now)
                times.append((time.perf_counter() - started) * 1000)
        each[name] = percentiles(times)
    window = {"sessions": figures.totals["sessions"], "signals": figures.totals["signals"],
              "batches": figures.latency.batches}
    return percentiles(whole), percentiles(rendered), {"statements": each, "window_rows": window}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signals", type=int, default=1_000_000)
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--recent-share", type=float, default=0.05)
    parser.add_argument("--refreshes", type=int, default=30)
    args = parser.parse_args()

    setup_django(DB_NAME)
    from catalog.models import Video
    from django.utils import timezone

    if not Video.objects.exists():
        import_real_catalog()
    now = timezone.now()
    print(f"filling {args.signals} signals over {args.sessions} sessions ({args.days} days, "
          f"{args.recent_share:.0%} in the last 15 minutes)...", file=sys.stderr)
    filled = fill(args.signals, args.sessions, args.days, args.recent_share, now)
    refresh, render, detail = time_refreshes(now, args.refreshes)
    plan = plans(now)

    print_table("rows", [{"table": k, "rows": v} for k, v in filled["rows"].items()]
                + [{"table": f"in the window: {k}", "rows": v} for k, v in detail["window_rows"].items()])
    print_table(f"one monitor refresh at {filled['rows']['signal']:,} signals (ms)", [
        {"what": "monitor_figures (5 statements)", "n": refresh["n"], "p50": refresh["p50_ms"],
         "p95": refresh["p95_ms"], "mean": refresh["mean_ms"]},
        {"what": "render the fragment", "n": render["n"], "p50": render["p50_ms"], "p95": render["p95_ms"],
         "mean": render["mean_ms"]},
        *({"what": name, "n": t["n"], "p50": t["p50_ms"], "p95": t["p95_ms"], "mean": t["mean_ms"]}
          for name, t in detail["statements"].items()),
    ])
    print_table("plans (the index scans each statement uses)", [{"statement": k, "plan": v} for k, v in plan.items()])
    write_json("monitor", {"machine": machine(), "args": vars(args), "fill": filled, "refresh": refresh,
                           "render": render, **detail, "plans": plan})


if __name__ == "__main__":
    main()
