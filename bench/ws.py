"""Benchmark of the feed websocket: N concurrent viewers on loopback sending view events.

Starts daphne (the production ASGI server) on the bench database, gives each viewer a feed
session that has served its first batch (as the feed page does) and a Django session cookie, opens
N websockets (50 at a time), then starts every viewer at once and has each watch cards: it stays on a card for the watch time it
will report (a mix of high, mid and low attention and skips: 16, 13, 10 or 2 s, 10 s on average)
divided by ``--speedup`` (default 2: twice as busy as such a viewer), then leaves it with a
``view`` event. ``--think-ms`` instead leaves every card after U(0.5, 1.5) x that many ms, for a
stress test. When the viewer is two cards from the end, that view also asks for the next batch
(``remaining``/``batch``), as the client does; if it reaches the last card first, it waits.

Measured, per N:
- ack latency: a view sent -> its ack received (p50 / p95 / p99);
- refill latency: the view that asks for the next batch -> the batch's HTML received;
- cards revised: replacements of cards not reached yet (swapped in place, as the page does);
- events lost: views sent whose signal is not in the database once the server is idle (must be
  0); views still unacknowledged when the viewer closed (late, or lost) are counted apart;
- the server's CPU time per view (its capacity), and this client's own event-loop lag.
Target: p95 ack <= 50 ms at 100 viewers on a 2-core machine (client, server and PostgreSQL
share it, so the numbers are pessimistic for the server alone).

    .venv/bin/python bench/ws.py [--viewers 10 100 500] [--views 12] [--speedup 2 | --think-ms MS]
                                 [--channel-layer memory|redis]

Uses the ``tokfeed_bench`` database (shared with bench/embed.py and bench/batch.py; the real
catalog is imported and embedded when missing). ``--channel-layer redis`` serves with the Redis
at ``BENCH_REDIS_URL`` (default redis://127.0.0.1:6379/13).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import numpy as np

from common import REPO, import_real_catalog, machine, print_table, setup_django, write_json

ACK_P95_TARGET_MS = 50.0
TARGET_VIEWERS = 100
SESSION_KEY = "bench-ws"  # marks this benchmark's feed sessions, removed when it ends
REFILL_AT = 2  # feed.forms.REFILL_AT (the client process does not import Django)
BATCH_WAIT_S = 60  # a viewer on its last card waits this long for the next batch, then gives up
DRAIN_S = 120  # after its last view, a viewer waits this long for its acks before closing
# (watched ms, share): HIGH_ATTN, MID_ATTN, LOW_ATTN, SKIP with the default thresholds.
WATCH_TIMES = [(16_000, 0.3), (13_000, 0.2), (10_000, 0.2), (2_000, 0.3)]
CARD = re.compile(r'id="card-(\d+)-(\d+)"[^>]*?data-video="(\d+)"', re.S)


def percentiles(samples_ms: list[float]) -> dict:
    if not samples_ms:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    p50, p95, p99 = np.percentile(samples_ms, [50, 95, 99])
    return {"n": len(samples_ms), "p50": round(float(p50), 2), "p95": round(float(p95), 2),
            "p99": round(float(p99), 2), "max": round(float(max(samples_ms)), 2)}


# --- the server ---------------------------------------------------------------------------

def database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    return f"postgres://{s['USER']}@{quote(str(s['HOST']), safe='')}:{s['PORT']}/{s['NAME']}"


def start_server(port: int, channel_layer: str, log_path, profile_path=None, workers: int = 0) -> subprocess.Popen:
    """The ASGI server on ``port``: one daphne process, or with ``workers`` uvicorn's that many
    worker processes behind the port, as ``make serve`` runs them (``tokfeed.serve``)."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    # The same SECRET_KEY as this process, which signed the viewers' Django sessions.
    env.update(DATABASE_URL=database_url(), DEBUG="0", SECRET_KEY=settings.SECRET_KEY, ALLOWED_HOSTS="127.0.0.1")
    if channel_layer == "redis":
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    log = open(log_path, "w")
    profiler = ["-m", "cProfile", "-o", str(profile_path)] if profile_path else []
    if workers:
        command = ["-m", "uvicorn", "tokfeed.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers), "--lifespan", "off", "--no-proxy-headers", "--no-server-header"]
    else:
        command = ["-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tokfeed.asgi:application"]
    server = subprocess.Popen([sys.executable, *profiler, *command], cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the server did not start; see {log_path}")
            time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- viewers -------------------------------------------------------------------------------

def make_viewers(n: int) -> list[dict]:
    """N feed sessions that served their first batch, each in a Django session (as the page leaves them)."""
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    from feed import services
    from feed.selectors import FEED_SESSION_KEY

    viewers = []
    for _ in range(n):
        session = services.start_session(anonymous_key=SESSION_KEY)
        batch = services.next_batch(session.id)
        store = SessionStore()
        store[FEED_SESSION_KEY] = str(session.id)
        store.create()
        viewers.append({
            "session": str(session.id),
            "cookie": f"{settings.SESSION_COOKIE_NAME}={store.session_key}",
            "cards": [item.video.pk for item in batch.items],
            "batch": batch.number,
        })
    return viewers


class Socket:
    """A websocket client on autobahn (already installed with daphne): frames land in a queue."""

    def __init__(self):
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        self.protocol = None

    async def open(self, port: int, cookie: str):
        from autobahn.asyncio.websocket import WebSocketClientFactory, WebSocketClientProtocol

        opened = asyncio.get_running_loop().create_future()
        inbox = self.inbox

        class Protocol(WebSocketClientProtocol):
            def onOpen(self):
                opened.set_result(self)

            def onMessage(self, payload, is_binary):
                inbox.put_nowait(payload.decode())

            def onClose(self, was_clean, code, reason):
                if not opened.done():
                    opened.set_exception(ConnectionError(f"closed before opening: {code} {reason}"))
                inbox.put_nowait(None)

        factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/ws/feed/", origin="http://127.0.0.1",
                                         headers={"Cookie": cookie})
        factory.protocol = Protocol
        await asyncio.get_running_loop().create_connection(factory, "127.0.0.1", port)
        self.protocol = await asyncio.wait_for(opened, 30)

    def send(self, payload: dict):
        self.protocol.sendMessage(json.dumps(payload).encode())

    def close(self):
        if self.protocol:
            self.protocol.sendClose()


def dwell_s(watched_ms: int, pace: dict, rng: random.Random) -> float:
    """How long the viewer stays on the card before leaving it."""
    if pace.get("think_ms"):
        return pace["think_ms"] / 1000 * rng.uniform(0.5, 1.5)
    return watched_ms / 1000 / pace["speedup"]


async def watch(viewer: dict, port: int, views: int, pace: dict, results: dict, start: asyncio.Event):
    """One viewer: stay on each card, then leave it with a view; ask for more two cards from the end."""
    rng = random.Random(str(viewer["session"]))
    ws = Socket()
    await ws.open(port, viewer["cookie"])
    cards, last_batch = list(viewer["cards"]), viewer["batch"]
    places = [(viewer["batch"], position) for position in range(len(cards))]  # (batch, position) of each card
    on_screen = 0  # the index of the card the viewer is on
    sent: dict[str, float] = {}      # event_id -> when sent, until acked
    refill_asked: float | None = None
    refill_event: str | None = None
    batch_arrived = asyncio.Event()

    async def read():
        nonlocal last_batch, refill_asked
        while (frame := await ws.inbox.get()) is not None:
            now = time.perf_counter()
            if frame.startswith("{"):
                message = json.loads(frame)
                if message["type"] == "ack" and message["event_id"] in sent:
                    results["ack_ms"].append((now - sent.pop(message["event_id"])) * 1000)
                elif message["type"] == "error":
                    results["errors"].append(message)
                    if message.get("event_id") == refill_event:
                        refill_asked = None  # the refill failed: ask again with the next view
            elif 'hx-swap-oob="outerHTML"' in frame:
                # Cards not reached yet, re-ranked after a view: swapped in place, as the page does
                # (never the card on screen or one before it).
                revised = {(int(b), int(p)): int(video) for b, p, video in CARD.findall(frame)}
                for i in range(on_screen + 1, len(cards)):
                    if places[i] in revised:
                        cards[i] = revised[places[i]]
                        results["revised"] += 1
            else:
                found = CARD.findall(frame)
                cards.extend(int(video) for _, _, video in found)
                places.extend((int(b), int(p)) for b, p, _ in found)
                last_batch = max(int(batch) for batch, _, _ in found)
                if refill_asked is not None:
                    results["refill_ms"].append((now - refill_asked) * 1000)
                    refill_asked = None
                batch_arrived.set()

    reader = asyncio.create_task(read())
    await start.wait()
    # Viewers start at random moments of their first card, not all at once.
    await asyncio.sleep(rng.uniform(0, dwell_s(10_000, pace, rng)))
    for index in range(views):
        watched = rng.choices([w for w, _ in WATCH_TIMES], [s for _, s in WATCH_TIMES])[0]
        await asyncio.sleep(dwell_s(watched, pace, rng) if index else 0)
        while index + 1 >= len(cards):  # on the last card: the next batch must come first
            batch_arrived.clear()
            try:
                await asyncio.wait_for(batch_arrived.wait(), BATCH_WAIT_S)
            except asyncio.TimeoutError:
                break
        if index + 1 >= len(cards):  # no batch came: an overloaded server; this viewer gives up
            results["stalled"] += 1
            break
        event = {"type": "view", "event_id": str(uuid.uuid4()), "video": cards[index], "watched_ms": watched,
                 "duration_ms": 20_000}
        remaining = len(cards) - 1 - (index + 1)  # after the card the viewer moves to
        if remaining <= REFILL_AT and refill_asked is None:
            event.update(remaining=remaining, batch=last_batch)
            refill_asked, refill_event = time.perf_counter(), event["event_id"]
        sent[event["event_id"]] = time.perf_counter()
        on_screen = index + 1
        ws.send(event)
        results["sent"] += 1
        results["sent_ids"].append(event["event_id"])
    deadline = time.monotonic() + DRAIN_S
    while (sent or refill_asked is not None) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    results["unacked"] += len(sent)
    ws.close()
    reader.cancel()
    if reader.done() and not reader.cancelled() and reader.exception() is not None:
        # A frame this client could not read: count it, or it would pass for a slow server.
        results["errors"].append({"type": "client", "message": repr(reader.exception())})


async def run_viewers(viewers: list[dict], port: int, views: int, pace: dict) -> dict:
    results = {"ack_ms": [], "refill_ms": [], "errors": [], "sent": 0, "unacked": 0, "stalled": 0,
               "sent_ids": [], "revised": 0}
    start = asyncio.Event()
    tasks = []
    for chunk in range(0, len(viewers), 50):  # open the sockets 50 at a time, then start together
        tasks += [asyncio.create_task(watch(v, port, views, pace, results, start)) for v in viewers[chunk:chunk + 50]]
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    started = time.perf_counter()
    start.set()
    lag = asyncio.create_task(measure_loop_lag(results.setdefault("client_lag_ms", [])))
    await asyncio.gather(*tasks)
    lag.cancel()
    results["wall_s"] = time.perf_counter() - started
    return results


async def measure_loop_lag(samples: list, every_s: float = 0.02):
    """How late this client's own event loop wakes up: latency it adds to every measurement."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(every_s)
        samples.append((time.perf_counter() - before - every_s) * 1000)


def count_recorded(event_ids: list[str]) -> int:
    """How many of these events have their signal in the database."""
    from feed.models import Signal

    found = 0
    for chunk in range(0, len(event_ids), 1000):
        found += Signal.objects.filter(event_id__in=event_ids[chunk:chunk + 1000]).count()
    return found


def wait_until_idle(pid: int, quiet_s: float = 1.0, limit_s: float = 120) -> None:
    """Until the server has used no CPU for ``quiet_s``: it has applied every event it received."""
    deadline, last, quiet_since = time.monotonic() + limit_s, cpu_seconds(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = cpu_seconds(pid)
        if now - last > 0.02:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return


def run_client(viewers: list[dict], port: int, views: int, pace: dict) -> dict:
    """The viewers run in a process of their own, without Django (whose daphne app sets txaio
    to Twisted, while this client is autobahn on asyncio)."""
    with tempfile.TemporaryDirectory() as tmp:
        plan, out = Path(tmp) / "viewers.json", Path(tmp) / "results.json"
        plan.write_text(json.dumps({"viewers": viewers, "port": port, "views": views, "pace": pace}))
        subprocess.run([sys.executable, __file__, "--client", str(plan), str(out)], check=True)
        return json.loads(out.read_text())


def client_main(plan_path: str, out_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    results = asyncio.run(run_viewers(plan["viewers"], plan["port"], plan["views"], plan["pace"]))
    Path(out_path).write_text(json.dumps(results))


def run(n: int, views: int, pace: dict, channel_layer: str, profile: bool = False) -> dict:
    from feed.models import FeedSession

    viewers = make_viewers(n)
    port = free_port()
    log_path = REPO / "bench" / "results" / f"ws-daphne-{n}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    profile_path = log_path.with_suffix(".prof") if profile else None
    server = start_server(port, channel_layer, log_path, profile_path)
    try:
        cpu_before = cpu_seconds(server.pid)
        results = run_client(viewers, port, views, pace)
        server_cpu_s = cpu_seconds(server.pid) - cpu_before
        wait_until_idle(server.pid)
    finally:
        server.send_signal(signal.SIGINT)  # a clean stop, which also writes the profile
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    if profile_path:
        print(f"server profile ({profile_path}), by own time:")
        pstats.Stats(str(profile_path)).sort_stats("tottime").print_stats(20)
    # Lost: sent, yet never applied (an ack that came late, or never, is not a loss if applied).
    lost = results["sent"] - count_recorded(results["sent_ids"])
    FeedSession.objects.filter(anonymous_key=SESSION_KEY).delete()
    ack, refill = percentiles(results["ack_ms"]), percentiles(results["refill_ms"])
    return {
        "viewers": n, "channel_layer": channel_layer, "views_sent": results["sent"],
        "views_per_s": round(results["sent"] / results["wall_s"], 1), "wall_s": round(results["wall_s"], 2),
        "server_cpu_ms_per_view": round(server_cpu_s * 1000 / max(results["sent"], 1), 2),
        "client_loop_lag_ms": percentiles(results["client_lag_ms"]),
        "ack_ms": ack, "refill_ms": refill, "lost": lost, "unacked_at_end": results["unacked"],
        "stalled_viewers": results["stalled"],
        "revised_cards": results["revised"],
        "errors": results["errors"][:5],
        "error_count": len(results["errors"]),
    }


def main():
    if sys.argv[1:2] == ["--client"]:
        client_main(*sys.argv[2:4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--views", type=int, default=12, help="views per viewer")
    parser.add_argument("--speedup", type=float, default=2.0, help="time on a card = reported watch time / this")
    parser.add_argument("--think-ms", type=int, default=0, help="instead: mean time on a card, whatever is watched")
    parser.add_argument("--channel-layer", choices=["memory", "redis"], default="memory")
    parser.add_argument("--profile", action="store_true", help="profile the server (cProfile) and print its top functions")
    args = parser.parse_args()

    setup_django()
    from django.core.management import call_command

    from catalog.models import Video

    if not Video.objects.filter(embedding__isnull=False).exists():
        import_real_catalog()
        call_command("embed", verbosity=0)
    from feed.models import FeedSession

    FeedSession.objects.filter(anonymous_key=SESSION_KEY).delete()  # left by an interrupted run

    pace = {"think_ms": args.think_ms} if args.think_ms else {"speedup": args.speedup}
    pace_label = (f"~{args.think_ms} ms on a card" if args.think_ms
                  else f"time on a card = watch time / {args.speedup:g}")
    results = []
    for n in args.viewers:
        print(f"{n} viewers x {args.views} views...", flush=True)
        results.append(run(n, args.views, pace, args.channel_layer, args.profile))
    print_table(
        f"feed websocket: view -> ack, refill view -> batch (ms; {pace_label}, {args.channel_layer} channel layer)",
        [{"viewers": r["viewers"], "views": r["views_sent"], "views/s": r["views_per_s"],
          "ack p50": r["ack_ms"]["p50"], "ack p95": r["ack_ms"]["p95"], "ack p99": r["ack_ms"]["p99"],
          "refills": r["refill_ms"]["n"], "batch p50": r["refill_ms"]["p50"], "batch p95": r["refill_ms"]["p95"],
          "batch p99": r["refill_ms"]["p99"], "server CPU ms/view": r["server_cpu_ms_per_view"],
          "client lag p95": r["client_loop_lag_ms"]["p95"],
          "lost": r["lost"], "unacked": r["unacked_at_end"], "stalled": r["stalled_viewers"],
          "revised": r.get("revised_cards", ""),
          "errors": r["error_count"]} for r in results],
    )
    for r in results:
        if r["viewers"] == TARGET_VIEWERS:
            p95 = r["ack_ms"]["p95"]
            verdict = "meets" if p95 is not None and p95 <= ACK_P95_TARGET_MS else "MISSES"
            print(f"{TARGET_VIEWERS} viewers: p95 ack {r['ack_ms']['p95']} ms ({verdict} the {ACK_P95_TARGET_MS:.0f} ms target)")
    if any(r["lost"] for r in results):
        print("EVENTS WERE LOST")
    suffix = ("" if args.channel_layer == "memory" else f"-{args.channel_layer}") + ("-stress" if args.think_ms else "")
    write_json(f"ws{suffix}", {"machine": machine(), "pace": pace, "views_per_viewer": args.views, "results": results})
    sys.exit(1 if any(r["lost"] for r in results) else 0)


if __name__ == "__main__":
    main()
