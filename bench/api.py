"""Partner API under concurrent load: requests/s and latency of recommendations and similarity.

Starts the ASGI server (one daphne process, as bench/ws.py does, or with ``--workers N`` uvicorn's
N worker processes, as ``make serve`` runs it) on the bench database with one
partner key (its rate limit lifted), and for each scenario runs ``--concurrency`` clients on
loopback, each sending its next request as soon as the last is answered, for ``--requests``
requests in all:

- ``recommendations (video_ids)``: POST /api/v1/recommendations/ around two liked videos (the
  funnel alone: recall, rerank, rules, top);
- ``recommendations (filtered)``: the same with a filter that keeps about a tenth of the
  catalog (the commonest hashtags blocked), so the exact filtered search runs;
- ``recommendations (interest_texts)``: the same from a described interest (the model encodes it
  on every request);
- ``similar (HTTP)``: GET /api/v1/videos/<id>/similar/?limit=10 for a random video.

Then, in this process and with the server stopped, the layers under ``similar (HTTP)``, at the
same concurrency: the selector it calls (``catalog.selectors.similar_videos``: one statement, the
video's vector, its neighbours and what is shown of them) and the bare ANN statement inside it
(the 11 nearest through HNSW at the connection's breadth), each thread on its own connection.
The table sets similar's HTTP p95 beside the bare statement's and their ratio (target: at most
3x), so a regression can be put on the SQL or on what surrounds it.

Reports requests/s, p50/p95/p99 per scenario (an answer other than 200 counts as an error), the
CPU each request costs the machine, in three parts: the web server (its worker processes), the
client (this process's threads) and PostgreSQL (the embedded server's processes; not measured
against a ``DATABASE_URL`` elsewhere), and the same for the layers under ``similar``. Every
part shares the machine's cores, so once they are busy a request's latency follows its total CPU
and the p95 ratio cannot beat the ratio of the totals. Then the
funnel's per-stage times (p50/p95 of each stage's ``ms`` as the server reported it), and the bare
ANN statements of recall (the 200 nearest) and of similar on one connection. Table + JSON in
bench/results/api.json.

    .venv/bin/python bench/api.py [--concurrency 8] [--requests 400] [--seed 0] [--similar-only] [--workers N]

The server's admission limit (``MAX_INFLIGHT``, per worker process) is set to twice the client
count: at 8 clients against the default 8, a run had 2 requests refused 503 ``overloaded``.
Refusals at the limit are the backpressure working, which ``bench/ws.py`` measures;
here they would only drop samples from the latency. The slots are still taken and given back on
every request, so their cost is in the numbers.

``--similar-only`` runs ``similar (HTTP)`` and the layers under it, not the recommendations.

Uses the ``tokfeed_bench`` database (shared with the other benchmarks; the real catalog is
imported and embedded when missing).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

from common import REPO, import_real_catalog, machine, print_table, setup_django, write_json
from ws import cpu_seconds, free_port, percentiles, start_server

KEY_NAME = "bench-api"
#: Target: similar's p95 over HTTP at most this many times its bare ANN statement's.
SIMILAR_RATIO_TARGET = 3.0
SIMILAR_LIMIT = 10


def load(port: int, key: str, requests: list[tuple[str, str, dict | None]], concurrency: int) -> dict:
    """Send each of ``requests`` (method, path, JSON body or None), ``concurrency`` at a time."""
    latencies: list[float] = []
    stages: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    queue = iter(requests)

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            method, path, body = item
            started = time.perf_counter()
            try:
                connection.request(method, path, None if body is None else json.dumps(body), headers)
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with lock:
                    errors.append(repr(exc))
                continue
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                if response.status != 200:
                    errors.append(f"{response.status}: {payload[:200]!r}")
                    continue
                latencies.append(elapsed)
                for stage in json.loads(payload).get("stages", ()):
                    stages[stage["name"]].append(stage["ms"])
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started, cpu = time.perf_counter(), CpuMeter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"requests": len(requests), "wall_s": round(wall, 2), "requests_per_s": round(len(latencies) / wall, 1),
            "latency_ms": percentiles(latencies), "stages_ms": {k: percentiles(v) for k, v in stages.items()},
            "errors": len(errors), "first_errors": errors[:3], **cpu.per_request(len(requests))}


def database_server_pid() -> int | None:
    """The pid of the PostgreSQL server the bench database is on, if it runs on this machine
    (the embedded one does); None otherwise."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('data_directory', true)")
        data_directory = cursor.fetchone()[0]
    try:
        pid = int((Path(data_directory) / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 0)
    except (TypeError, OSError, ValueError, IndexError):
        return None
    return pid


class CpuMeter:
    """CPU used from its creation, per request: this process's (the client's threads), the web
    server's (``CpuMeter.server_pid``, when one runs) and PostgreSQL's (its server and backends,
    ``CpuMeter.database_pid``)."""

    server_pid: int | None = None
    database_pid: int | None = None

    def __init__(self):
        self.started = self._now()

    def _now(self) -> dict[str, float | None]:
        return {"client": time.process_time(),
                "server": cpu_seconds(self.server_pid) if self.server_pid else None,
                "database": cpu_seconds(self.database_pid) if self.database_pid else None}

    def per_request(self, requests: int) -> dict:
        now = self._now()
        return {f"{part}_cpu_ms_per_request": None if now[part] is None else
                round((now[part] - self.started[part]) * 1000 / requests, 2) for part in now}


def time_in_process(call, arguments: list, concurrency: int) -> dict:
    """``call(argument)`` for each argument from ``concurrency`` threads, each with its own connection."""
    from django.db import connection as django_connection

    latencies: list[float] = []
    lock = threading.Lock()
    queue = iter(arguments)

    def worker():
        try:
            while True:
                with lock:
                    argument = next(queue, None)
                if argument is None:
                    break
                started = time.perf_counter()
                call(argument)
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
        finally:
            django_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started, cpu = time.perf_counter(), CpuMeter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"requests": len(arguments), "wall_s": round(wall, 2), "requests_per_s": round(len(latencies) / wall, 1),
            "latency_ms": percentiles(latencies), "stages_ms": {}, "errors": len(arguments) - len(latencies),
            **cpu.per_request(len(arguments))}


def cpu_columns(result: dict) -> dict:
    """A result's CPU per request by part, and their total (None where a part was not measured)."""
    parts = {"server": result["server_cpu_ms_per_request"], "client": result["client_cpu_ms_per_request"],
             "PostgreSQL": result["database_cpu_ms_per_request"]}
    measured = [v for v in parts.values() if v is not None]
    return {f"{part} CPU/req": "-" if value is None else value for part, value in parts.items()} | {
        "total CPU/req": round(sum(measured), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--similar-only", action="store_true", help="skip the recommendations scenarios")
    parser.add_argument("--workers", type=int, default=0,
                        help="serve with uvicorn and this many worker processes, as make serve does (0: one daphne)")
    args = parser.parse_args()

    setup_django()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from algorithms.ranking.funnel import RECALL_K
    from catalog.models import Hashtag, Video
    from catalog.selectors import MAX_EF_SEARCH, VideoCatalog, set_search_breadth, similar_videos
    from feed.models import SCOPES, PartnerKey
    from feed.services import create_key

    if not Video.objects.filter(embedding__isnull=False).exists():
        import_real_catalog()
        call_command("embed", verbosity=0)
    PartnerKey.objects.filter(name=KEY_NAME).delete()
    _, key = create_key(KEY_NAME, SCOPES)
    rng = random.Random(args.seed)
    videos = list(Video.objects.filter(embedding__isnull=False).values_list("id", flat=True))
    # A filter that keeps about a tenth of the catalog: block the commonest hashtags until
    # only that many videos lack them all (the real catalog has no languages or follower counts).
    blocked, covered = [], set()
    for tag in Hashtag.objects.annotate(n=Count("videos")).order_by("-n", "id")[:500]:
        if len(videos) - len(covered) <= len(videos) // 10:
            break
        blocked.append(tag.name)
        covered |= set(tag.videos.values_list("id", flat=True))
    kept_share = round(1 - len(covered) / len(videos), 3)
    interests = ["gym workouts", "cute dogs and cats", "street food", "dance challenge", "makeup tutorial",
                 "football skills", "funny pranks", "cooking at home"]
    recommend = "/api/v1/recommendations/"
    scenarios = {
        "recommendations (video_ids)": [("POST", recommend, {"video_ids": rng.sample(videos, 2), "limit": 10})
                                        for _ in range(args.requests)],
        "recommendations (filtered)": [("POST", recommend, {"video_ids": rng.sample(videos, 2), "limit": 10,
                                                            "filters": {"blocked_hashtags": blocked}})
                                       for _ in range(args.requests)],
        "recommendations (interest_texts)": [("POST", recommend, {"interest_texts": [rng.choice(interests)], "limit": 10})
                                             for _ in range(args.requests)],
    }
    if args.similar_only:
        scenarios = {}
    targets = [rng.choice(videos) for _ in range(args.requests)]
    scenarios["similar (HTTP)"] = [("GET", f"/api/v1/videos/{video}/similar/?limit={SIMILAR_LIMIT}", None)
                                   for video in targets]

    os.environ["API_RATE_PER_KEY"] = "1000000/min"  # the server's; a benchmark is not abuse
    os.environ["MAX_INFLIGHT"] = str(2 * args.concurrency)  # latency, not refusals (see the docstring)
    port = free_port()
    log_path = REPO / "bench" / "results" / "api-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    server = start_server(port, "memory", log_path, workers=args.workers)
    CpuMeter.server_pid, CpuMeter.database_pid = server.pid, database_server_pid()
    results = {}
    try:
        if not args.similar_only:
            load(port, key, scenarios["recommendations (video_ids)"][:20], 2)  # warm up: model, blueprint, pool
            load(port, key, scenarios["recommendations (interest_texts)"][:8], 2)
        # At the measured concurrency, so each worker's pool has opened the connections it will use.
        load(port, key, scenarios["similar (HTTP)"][:4 * args.concurrency], args.concurrency)
        for name, requests in scenarios.items():
            print(f"{name}: {len(requests)} requests, {args.concurrency} clients...", flush=True)
            results[name] = load(port, key, requests, args.concurrency)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        CpuMeter.server_pid = None
        PartnerKey.objects.filter(name=KEY_NAME).delete()

    # The layers under similar over HTTP, in this process, at the same concurrency.
    literals = {video: "[" + ",".join(map(str, vector.tolist())) + "]"
                for video, vector in zip(videos, VideoCatalog().vectors(videos))}
    ann_sql = (f"SELECT id FROM {Video._meta.db_table} WHERE embedding IS NOT NULL "
               "ORDER BY embedding <=> %s::vector LIMIT %s")
    # What the similar search asks of the index: the limit, plus one for the video itself,
    # at the connection's breadth (``VideoCatalog.search_many``).
    similar_k = SIMILAR_LIMIT + 1

    def similar_statement(video):
        with connection.cursor() as cursor:
            cursor.execute(ann_sql, [literals[video], similar_k])
            cursor.fetchall()

    print("similar: the selector, then its bare ANN statement, in this process...", flush=True)
    layers = {
        "selector (similar_videos)": time_in_process(lambda video: similar_videos(video, SIMILAR_LIMIT), targets,
                                                     args.concurrency),
        "bare ANN statement": time_in_process(similar_statement, targets, args.concurrency),
    }

    def one_connection(ef_search: int, k: int) -> dict:
        samples = []
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(ef_search)])
            for video in targets:
                started = time.perf_counter()
                cursor.execute(ann_sql, [literals[video], k])
                cursor.fetchall()
                samples.append((time.perf_counter() - started) * 1000)
        return percentiles(samples)

    similar_ef = set_search_breadth(connection).single
    similar_one_ms = one_connection(similar_ef, similar_k)
    # The bare ANN statement recall runs, as deep as recall searches (``VideoCatalog.search_many``:
    # twice k, within pgvector's ceiling).
    recall_ef = min(MAX_EF_SEARCH, 2 * RECALL_K)
    ann_ms = one_connection(recall_ef, RECALL_K)

    http_p95 = results["similar (HTTP)"]["latency_ms"]["p95"]
    bare_p95 = layers["bare ANN statement"]["latency_ms"]["p95"]
    ratio = round(http_p95 / bare_p95, 1)
    ratio_one = round(http_p95 / similar_one_ms["p95"], 1)

    print_table(f"partner API under load ({args.concurrency} concurrent clients, {len(videos)} videos; ms)",
                [{"scenario": name, "req/s": r["requests_per_s"], "p50": r["latency_ms"]["p50"],
                  "p95": r["latency_ms"]["p95"], "p99": r["latency_ms"]["p99"], "errors": r["errors"],
                  **cpu_columns(r)}
                 for name, r in results.items()])
    print_table("funnel stages as the server timed them (ms)",
                [{"scenario": name, "stage": stage, "n": s["n"], "p50": s["p50"], "p95": s["p95"]}
                 for name, r in results.items() for stage, s in r["stages_ms"].items()])
    print_table(f"similar ({SIMILAR_LIMIT} nearest): over HTTP and the layers under it (ms; the statement: "
                f"{similar_k} nearest through HNSW at ef_search {similar_ef})",
                [{"layer": f"over HTTP ({args.concurrency} clients)", "p50": results["similar (HTTP)"]["latency_ms"]["p50"],
                  "p95": http_p95, "p95 / bare": ratio}]
                + [{"layer": f"{name} ({args.concurrency} threads, in process)", "p50": r["latency_ms"]["p50"],
                    "p95": r["latency_ms"]["p95"], "p95 / bare": round(r["latency_ms"]["p95"] / bare_p95, 1)}
                   for name, r in layers.items()]
                + [{"layer": "bare ANN statement (one connection)", "p50": similar_one_ms["p50"],
                    "p95": similar_one_ms["p95"], "p95 / bare": round(similar_one_ms["p95"] / bare_p95, 1)}])
    print_table("similar: CPU per request, on the machine's shared cores (ms)",
                [{"layer": "over HTTP", **cpu_columns(results["similar (HTTP)"])}]
                + [{"layer": name, **cpu_columns(r)} for name, r in layers.items()])
    verdict = "within" if ratio <= SIMILAR_RATIO_TARGET else "OVER"
    print(f"\nsimilar over HTTP: p95 {http_p95} ms, {ratio}x its bare ANN statement's at the same concurrency "
          f"({verdict} the {SIMILAR_RATIO_TARGET:g}x target); {ratio_one}x the statement's on one connection")
    print(f"bare ANN statement of recall ({RECALL_K} nearest, HNSW at ef_search {recall_ef}, one connection): "
          f"p50 {ann_ms['p50']} ms, p95 {ann_ms['p95']} ms")
    print(f"the filtered scenario blocks {len(blocked)} hashtags, keeping {kept_share:.1%} of the videos")
    server_kind = f"uvicorn, {args.workers} workers" if args.workers else "daphne, one process"
    print(f"server: {server_kind}")
    write_json("api", {"machine": machine(), "server": server_kind, "videos": len(videos), "concurrency": args.concurrency,
                       "filtered_keeps": kept_share, "results": results, "bare_ann_ms": ann_ms,
                       "similar": {"limit": SIMILAR_LIMIT, "ef_search": similar_ef, "http_ms": results["similar (HTTP)"]["latency_ms"],
                                   "layers": layers, "bare_ann_one_connection_ms": similar_one_ms,
                                   "http_to_bare_ann_p95": ratio, "http_to_bare_ann_one_connection_p95": ratio_one,
                                   "target": SIMILAR_RATIO_TARGET}})


if __name__ == "__main__":
    main()
