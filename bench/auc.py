"""Benchmark of ``manage.py evaluate_auc`` at scale: 50 000 users, 20 000 items, 3 000 tested.

Generates a seeded synthetic dataset in the neutral format (short item texts in 200 topics;
each user engages mostly within one or two topics, with Zipf popularity inside each topic and
across the catalog; the tested users' last engagement is their test positive, their negatives
left for the command to draw), then runs the command once in a child process and reports its
wall time, its CPU time and the machine's load. Target: under 15 minutes on the 2-core machine.

    .venv/bin/python bench/auc.py [--users 50000] [--items 20000] [--tested 3000] [--negatives uniform]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import REPO, machine, print_table, write_json

ADJECTIVES = ["spicy", "quick", "vintage", "tiny", "epic", "cozy", "urban", "wild", "retro", "funny",
              "silent", "golden", "frozen", "lazy", "bright", "deep", "rainy", "noisy", "gentle", "brave"]
SUBJECTS = ["cooking", "football", "guitar", "gardening", "chess", "makeup", "skateboarding", "baking",
            "fishing", "painting"]
WORDS = ["tutorial", "review", "challenge", "highlights", "tips", "vlog", "reaction", "story", "live", "remix",
         "basics", "fails", "secrets", "routine", "setup", "unboxing", "duet", "trick", "journey", "recap"]


def generate(folder: Path, users: int, items: int, tested: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    topics = [f"{a} {s}" for s in SUBJECTS for a in ADJECTIVES]  # 200 topics
    topic_of = np.arange(items) % len(topics)
    with open(folder / "items.jsonl", "w") as f:
        for i in range(items):
            text = f"{topics[topic_of[i]]} {WORDS[(i // len(topics)) % len(WORDS)]} {i // (len(topics) * len(WORDS))}"
            f.write(json.dumps({"id": i, "text": text}) + "\n")
    by_topic = [np.flatnonzero(topic_of == t) for t in range(len(topics))]
    zipf_global = 1.0 / np.arange(1, items + 1) ** 0.9
    zipf_global /= zipf_global.sum()
    global_order = rng.permutation(items)
    lengths = np.minimum(4 + rng.geometric(1 / 17, size=users), 300)
    tested_users = set(rng.choice(users, size=tested, replace=False).tolist())
    events = 0
    with open(folder / "events.jsonl", "w") as f:
        for u in range(users):
            liked = rng.choice(len(topics), size=1 + int(rng.random() < 0.5), replace=False)
            n = int(lengths[u])
            in_topic = rng.random(n) < 0.8
            picks = np.empty(n, dtype=np.int64)
            topic_choice = liked[rng.integers(0, len(liked), size=n)]
            ranks = np.minimum(rng.zipf(1.3, size=n) - 1, 99)
            for k in range(n):
                if in_topic[k]:
                    pool = by_topic[topic_choice[k]]
                    picks[k] = pool[ranks[k] % len(pool)]
                else:
                    picks[k] = global_order[rng.choice(items, p=zipf_global)] if k % 8 == 0 else global_order[ranks[k]]
            lines = [json.dumps({"user": u, "item": int(i), "label": 1, "split": "history"}) for i in picks]
            if u in tested_users:
                # A new item of one of the user's topics, never one already in its history.
                seen = set(picks.tolist())
                pool = [i for i in by_topic[liked[0]].tolist() if i not in seen] or \
                    [i for i in range(items) if i not in seen]
                rank = min(int(rng.zipf(1.3)) - 1, len(pool) - 1)
                lines.append(json.dumps({"user": u, "item": pool[rank], "label": 1, "split": "test"}))
            f.write("\n".join(lines) + "\n")
            events += len(lines)
    return {"users": users, "items": items, "tested_users": tested, "events": events}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--tested", type=int, default=3_000)
    parser.add_argument("--negatives", choices=["uniform", "popularity"], default="uniform")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-auc-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        sizes = generate(folder, args.users, args.items, args.tested, args.seed)
        generate_s = time.perf_counter() - started
        print(f"generated {sizes} in {generate_s:.1f} s", flush=True)

        load_before = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(REPO / "manage.py"), "evaluate_auc", "--items", str(folder / "items.jsonl"),
                        "--events", str(folder / "events.jsonl"), "--negatives", args.negatives,
                        "--report", str(folder / "report"), "--seed", str(args.seed)], cwd=REPO, check=True)
        wall_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = os.getloadavg()[0]
        report = json.loads((folder / "report" / "evaluate_auc.json").read_text())

    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    row = {"users": args.users, "items": args.items, "tested": args.tested, "events": sizes["events"],
           "wall_s": round(wall_s, 1), "cpu_s": round(cpu_s, 1), "load_avg_before": round(load_before, 1),
           "load_avg_after": round(load_after, 1), "under_15_min": wall_s < 900}
    print_table("evaluate_auc at scale (one run)", [row])
    print_table("its phases (s)", [report["timings_s"]])
    print_table("its metrics", [{"method": m, **{k: v for k, v in values.items()}} for m, values in report["methods"].items()])
    write_json("auc", {"machine": machine(), "run": row, "timings_s": report["timings_s"],
                       "methods": report["methods"], "dataset": report["dataset"], "hybrid": report["hybrid"]})


if __name__ == "__main__":
    main()
