"""Partner API under concurrent load: requests/s and latency of recommendations and similarity.

Starts daphne (the production ASGI server, as bench/ws.py does) on the bench database with one
partner key (its rate limit lifted), and for each scenario runs ``--concurrency`` clients on
loopback, each sending its next request as soon as the last is answered, for ``--requests``
requests in all:

- ``recommendations (video_ids)``: POST /api/v1/recommendations/ around two liked videos (the
  funnel alone: recall, rerank, rules, top);
- ``recommendations (filtered)``: the same with a filter that keeps about a tenth of the
  catalog (the commonest hashtags blocked), so the exact filtered search runs;
- ``recommendations (interest_texts)``: the same from a described interest (the model encodes it
  on every request);
- ``similar``: the bare selector call the similarity endpoint makes (``VideoCatalog.search``,
  10 nearest to a video), in this process: the catalog's similarity endpoint is not on this
  branch.

Reports requests/s, p50/p95/p99 per scenario (a non-200 answer counts as an error), the funnel's
per-stage times (p50/p95 of each stage's ``ms`` as the server reported it), and in the same run
the bare ANN statement's p95 (the 200 nearest through HNSW, in this process), so a regression can
be put on the SQL or on what surrounds it. Table + JSON in bench/results/api.json.

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

from common import REPO, import_real_catalog, machine, print_table, setup_django, write_json
from ws import free_port, percentiles, start_daphne

KEY_NAME = "bench-api"


def load(port: int, key: str, bodies: list[dict], concurrency: int) -> dict:
    """POST each of ``bodies`` to the recommendations endpoint, ``concurrency`` at a time."""
    latencies: list[float] = []
    stages: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    queue = iter(enumerate(bodies))

    def client():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            started = time.perf_counter()
            try:
                connection.request("POST", "/api/v1/recommendations/", json.dumps(item[1]), headers)
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
                for stage in json.loads(payload)["stages"]:
                    stages[stage["name"]].append(stage["ms"])
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"requests": len(bodies), "wall_s": round(wall, 2), "requests_per_s": round(len(latencies) / wall, 1),
            "latency_ms": percentiles(latencies), "stages_ms": {k: percentiles(v) for k, v in stages.items()},
            "errors": len(errors), "first_errors": errors[:3]}


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
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {"requests": len(arguments), "wall_s": round(wall, 2), "requests_per_s": round(len(latencies) / wall, 1),
            "latency_ms": percentiles(latencies), "stages_ms": {}, "errors": len(arguments) - len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    setup_django()
    from django.core.management import call_command
    from django.db import connection
    from rest_framework_api_key.models import APIKey

    from algorithms.ranking.funnel import RECALL_K
    from django.db.models import Count

    from catalog.models import Hashtag, Video
    from catalog.selectors import MAX_EF_SEARCH, VideoCatalog

    if not Video.objects.filter(embedding__isnull=False).exists():
        import_real_catalog()
        call_command("embed", verbosity=0)
    APIKey.objects.filter(name=KEY_NAME).delete()
    _, key = APIKey.objects.create_key(name=KEY_NAME)
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
    scenarios = {
        "recommendations (video_ids)": [{"video_ids": rng.sample(videos, 2), "limit": 10} for _ in range(args.requests)],
        "recommendations (filtered)": [{"video_ids": rng.sample(videos, 2), "limit": 10,
                                        "filters": {"blocked_hashtags": blocked}} for _ in range(args.requests)],
        "recommendations (interest_texts)": [{"interest_texts": [rng.choice(interests)], "limit": 10}
                                             for _ in range(args.requests)],
    }

    os.environ["API_RATE_PER_KEY"] = "1000000/min"  # the server's; a benchmark is not abuse
    port = free_port()
    log_path = REPO / "bench" / "results" / "api-daphne.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    server = start_daphne(port, "memory", log_path)
    results = {}
    try:
        load(port, key, scenarios["recommendations (video_ids)"][:20], 2)  # warm up: model, blueprint, pool
        load(port, key, scenarios["recommendations (interest_texts)"][:8], 2)
        for name, bodies in scenarios.items():
            print(f"{name}: {len(bodies)} requests, {args.concurrency} clients...", flush=True)
            results[name] = load(port, key, bodies, args.concurrency)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        APIKey.objects.filter(name=KEY_NAME).delete()

    catalog = VideoCatalog()
    vectors = dict(zip(videos, catalog.vectors(videos)))
    targets = [rng.choice(videos) for _ in range(args.requests)]
    print("similar (bare selector call)...", flush=True)
    results["similar (selector, in process)"] = time_in_process(
        lambda video: VideoCatalog().search(vectors[video], 10, frozenset({video})), targets, args.concurrency)

    # The bare ANN statement recall runs, on one connection, in the same run.
    ann = []
    with connection.cursor() as cursor:
        # As deep as recall searches (``VideoCatalog.search_many``: twice k, within pgvector's ceiling).
        cursor.execute("SELECT set_config('hnsw.ef_search', %s, false)", [str(min(MAX_EF_SEARCH, 2 * RECALL_K))])
        for video in targets:
            literal = "[" + ",".join(map(str, vectors[video].tolist())) + "]"
            started = time.perf_counter()
            cursor.execute(f"SELECT id FROM {Video._meta.db_table} WHERE embedding IS NOT NULL "
                           "ORDER BY embedding <=> %s::vector LIMIT %s", [literal, RECALL_K])
            cursor.fetchall()
            ann.append((time.perf_counter() - started) * 1000)
    ann_ms = percentiles(ann)

    print_table(f"partner API under load ({args.concurrency} concurrent clients, {len(videos)} videos; ms)",
                [{"scenario": name, "req/s": r["requests_per_s"], "p50": r["latency_ms"]["p50"],
                  "p95": r["latency_ms"]["p95"], "p99": r["latency_ms"]["p99"], "errors": r["errors"]}
                 for name, r in results.items()])
    print_table("funnel stages as the server timed them (ms)",
                [{"scenario": name, "stage": stage, "n": s["n"], "p50": s["p50"], "p95": s["p95"]}
                 for name, r in results.items() for stage, s in r["stages_ms"].items()])
    print(f"\nbare ANN statement ({RECALL_K} nearest, HNSW at ef_search {min(MAX_EF_SEARCH, 2 * RECALL_K)}, one connection): p50 {ann_ms['p50']} ms, p95 {ann_ms['p95']} ms")
    print(f"the filtered scenario blocks {len(blocked)} hashtags, keeping {kept_share:.1%} of the videos")
    write_json("api", {"machine": machine(), "videos": len(videos), "concurrency": args.concurrency,
                       "filtered_keeps": kept_share,
                       "results": results, "bare_ann_ms": ann_ms})


if __name__ == "__main__":
    main()
