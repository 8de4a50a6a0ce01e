"""Benchmark of ``feed.services.next_batch`` and of the ANN stage under it, by catalog size.

For each catalog (the real one, and synthetic catalogs of 100 000 and 1 000 000 vectors):

- latency of ``next_batch`` (p50 / p95 / p99 / mean, and per state of the default algorithm;
  then the same sessions on each ``--compare`` algorithm, one after the other, in the same run),
  timed alone inside a realistic session loop: ``start_session`` with the default algorithm,
  then ``next_batch`` and a ``record_view`` per item, with watch times that mix high attention,
  mid, low and skips (and whole batches left without any signal) so sessions walk through the
  ``0`` / ``H`` / ``M`` / ``L`` / ``L-R`` states and their history grows as a viewer's would;
- recall@10 of the ANN stage (``VideoCatalog.search``, HNSW) against exact search computed with
  numpy over every stored vector, on held-out queries: for one query, and for each query of a
  batch of 2, 3 or 4 (the multi-interest states, which share the search breadth); recall@20 of
  the over-fetch path ``next_batch`` uses (150 of the 300 nearest already seen); latency of
  ANN vs exact search (numpy, and PostgreSQL's sequential scan, the product's fallback);
  recall and latency for a few ``hnsw.ef_search`` values (the data behind
  ``catalog.selectors.SEARCH_BREADTHS``); the recall judged against the target is the lowest;
- the SQL each batch runs (counts, and the statements that take the time).

Everything is timed after a warm-up that brings the HNSW index into PostgreSQL's buffers, as on
a server that has been running a while (``warm_index``).

Targets: p95 <= 25 ms at 100 000 vectors on a 2-core machine; recall@10 >= 0.95.

Each size has a database of its own on the embedded server: ``tokfeed_bench`` (the real catalog,
shared with bench/embed.py), ``tokfeed_bench_100k``, ``tokfeed_bench_1m``. Synthetic catalogs
are generated once and kept (a marker row records how; a re-run with the same recipe reuses
them): clustered unit vectors, not uniform noise, whose similarity statistics resemble the real
catalog's (see ``Mixture``). Each size runs in a subprocess of its own (Django is set up once
per process); the default mode runs them in turn and merges their results.

    .venv/bin/python bench/batch.py [--sizes real,100000,1000000] [--batches 300] [--sessions 10] [--compare seed-default]
                                    [--queries 200] [--long-session 0] [--profile] [--rebuild]

With ``DATABASE_URL`` set, every size would share that one database (and a synthetic size
replaces its videos): run one size at a time, against a database you can spare.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict

import numpy as np

from common import REPO, import_real_catalog, machine, print_table, setup_django, write_json

P95_TARGET_MS = 25.0
P95_TARGET_SIZE = 100_000
RECALL_TARGET = 0.95
SESSION_KEY = "bench-batch"
MARKER_EXTERNAL_ID = "synth-bench-marker"
HNSW_INDEX = "video_embedding_hnsw"
EF_SWEEP = (40, 64, 100, 200, 400)
MULTI_QUERY_COUNTS = (2, 3, 4)  # queries per batch in the default algorithm's L-R, L and M states
SEEN_POOL, SEEN_COUNT, SEEN_K = 300, 150, 20  # over-fetch check: 150 of the 300 nearest seen, want 20


# --- sizes and databases --------------------------------------------------------------------

def parse_size(text: str) -> int | str:
    text = text.strip().lower()
    if text == "real":
        return "real"
    multiplier = 1
    if text.endswith("k"):
        text, multiplier = text[:-1], 1_000
    elif text.endswith("m"):
        text, multiplier = text[:-1], 1_000_000
    value = int(float(text) * multiplier)
    if value < 1000:
        raise argparse.ArgumentTypeError(f"a synthetic catalog needs at least 1000 vectors, not {value}")
    return value


def size_label(size: int | str) -> str:
    if size == "real":
        return "real"
    if size % 1_000_000 == 0:
        return f"{size // 1_000_000}m"
    if size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


def database_for(size: int | str) -> str:
    return "tokfeed_bench" if size == "real" else f"tokfeed_bench_{size_label(size)}"


# --- the synthetic catalog ------------------------------------------------------------------

class Mixture:
    """Clustered unit vectors, shaped like sentence embeddings rather than uniform noise.

    Uniform random 384-d unit vectors have no neighbour structure (every pair is at cosine
    ~0 +- 0.05), which makes ANN recall meaningless. Here ``clusters`` centres (sizes drawn
    log-normally) are ``normalize(beta * m + c)`` around one shared direction ``m`` (real
    embeddings share one too: the mean of the real catalog's vectors has norm 0.62), with ``c``
    from an anisotropic Gaussian whose spectrum decays as ``i ** -spectrum_alpha`` (so the
    catalog spreads over a few dozen effective dimensions, as real embeddings do: participation
    ratio ~70 here, 64 for the real catalog). A vector is its centre plus ``sigma`` times noise
    from the same spectrum, normalised. The defaults give random pairs at cosine ~0.37 and a
    held-out query's 10th nearest neighbour at ~0.73 (100 000 vectors) / ~0.76 (1 000 000);
    the real catalog has random pairs at 0.38 +- 0.11 and a video's 10th neighbour at 0.61
    with only 1000 videos.
    """

    def __init__(self, spec: dict):
        self.spec = spec
        d, clusters = spec["dim"], spec["clusters"]
        rng = np.random.default_rng(spec["seed"])
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        scale = np.arange(1, d + 1, dtype=np.float64) ** -spec["spectrum_alpha"]
        scale /= math.sqrt((scale**2).sum())
        self.basis = (q * scale).T.astype(np.float32)  # z @ basis: variance scale[i]^2 along q[:, i]
        shared = rng.standard_normal(d)
        shared /= np.linalg.norm(shared)
        centres = spec["beta"] * shared + rng.standard_normal((clusters, d)) @ self.basis
        self.centres = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)
        weights = rng.lognormal(0.0, 1.0, clusters)
        self.weights = weights / weights.sum()

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.choice(len(self.centres), size=n, p=self.weights)
        noise = rng.standard_normal((n, self.basis.shape[0]), dtype=np.float32) @ self.basis
        x = self.centres[labels] + np.float32(self.spec["sigma"]) * noise
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32), labels


def synthetic_spec(n: int, dim: int) -> dict:
    return {"generator": "bench/batch.py", "version": 1, "n": n, "dim": dim, "clusters": 1000,
            "beta": 1.1, "sigma": 0.7, "spectrum_alpha": 0.4, "seed": 2020}


def _timestamps_us(seconds_since_epoch: np.ndarray) -> np.ndarray:
    """PostgreSQL's binary timestamptz: microseconds since 2000-01-01 UTC."""
    return ((seconds_since_epoch - 946_684_800) * 1_000_000).astype(np.int64)


def _copy_dtype(text_lengths: dict[str, int], dim: int) -> tuple[np.dtype, list[str]]:
    """A numpy record laid out exactly as one row of PostgreSQL's binary COPY format."""
    columns = [
        ("creator_id", ">i8"), ("external_id", "text"), ("caption", "text"), ("document", "text"),
        ("document_hash", "text"), ("embedding_model", "text"), ("embedding_document_hash", "text"),
        ("embedded_at", ">i8"), ("embedding", "vector"), ("duration_s", ">i4"), ("play_count", ">i8"),
        ("like_count", ">i8"), ("share_count", ">i8"), ("comment_count", ">i8"), ("created_at", ">i8"),
        ("language", "text"), ("web_url", "text"), ("media_url", "text"), ("cover_url", "text"), ("topic", ">i4"),
    ]
    fields = [("nfields", ">i2")]
    for name, kind in columns:
        fields.append((f"{name}__len", ">i4"))
        if kind == "text":
            if text_lengths.get(name, 0):
                fields.append((name, f"S{text_lengths[name]}"))
        elif kind == "vector":
            fields += [(f"{name}__dim", ">u2"), (f"{name}__unused", ">u2"), (name, ">f4", (dim,))]
        else:
            fields.append((name, kind))
    return np.dtype(fields), [name for name, _ in columns]


class _IndexProgress(threading.Thread):
    """Prints pg_stat_progress_create_index every ``every`` seconds while an index builds."""

    def __init__(self, every: float = 60.0):
        super().__init__(daemon=True)
        self.every, self.done = every, threading.Event()

    def run(self):
        from django.db import connection

        try:
            conn = connection.get_new_connection(connection.get_connection_params())
            conn.autocommit = True
        except Exception:  # progress is a nicety
            return
        started = time.perf_counter()
        while not self.done.wait(self.every):
            row = conn.execute(
                "SELECT phase, tuples_done, tuples_total, blocks_done, blocks_total "
                "FROM pg_stat_progress_create_index WHERE datname = current_database()"
            ).fetchone()
            if row:
                print(f"  ... {time.perf_counter() - started:.0f} s: {row[0]}, tuples {row[1]}/{row[2]}, "
                      f"blocks {row[3]}/{row[4]}", flush=True)
        conn.close()


def _hnsw_index():
    from catalog.models import Video

    return next(index for index in Video._meta.indexes if index.name == HNSW_INDEX)


def _index_state() -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indisvalid, pg_relation_size(c.oid), pg_get_indexdef(c.oid) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
            [HNSW_INDEX],
        )
        row = cursor.fetchone()
    return None if row is None else {"valid": row[0], "bytes": row[1], "definition": row[2]}


def synthetic_ready(spec: dict) -> bool:
    from catalog.models import Creator, Video

    marker = Creator.objects.filter(external_id=MARKER_EXTERNAL_ID).values_list("bio", flat=True).first()
    if marker is None:
        return False
    try:
        recorded = json.loads(marker)
    except ValueError:
        return False
    if recorded.get("spec") != spec or not recorded.get("complete"):
        return False
    index = _index_state()
    return bool(index and index["valid"]) and Video.objects.filter(embedding__isnull=False).count() == spec["n"]


def build_synthetic(spec: dict) -> dict:
    """Replace the database's catalog with ``spec``'s synthetic one: COPY, topics, HNSW, ANALYZE."""
    from django.conf import settings
    from django.db import connection, transaction
    from django.utils import timezone

    from algorithms.vectors import kmeans
    from catalog.documents import document_hash, video_document
    from catalog.embedding_jobs import topic_count_for
    from catalog.models import Creator, Topic, Video

    n, dim = spec["n"], spec["dim"]
    mixture = Mixture(spec)
    timings = {}
    print(f"generating {n} synthetic vectors into {connection.settings_dict['NAME']} ...", flush=True)
    table = connection.ops.quote_name(Video._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(HNSW_INDEX)}")
        cursor.execute(f"TRUNCATE {table} RESTART IDENTITY CASCADE")
    Topic.objects.all().delete()
    Creator.objects.all().delete()
    marker = Creator.objects.create(
        external_id=MARKER_EXTERNAL_ID, handle="synthetic", display_name="Synthetic catalog (bench/batch.py)",
        bio=json.dumps({"spec": spec, "complete": False}),
    )

    # Topics: k-means over a sample (the product clusters every vector; at 1M that is slow and
    # only sampled batches read topics), then every vector labelled with its nearest centroid.
    started = time.perf_counter()
    sample, _ = mixture.draw(min(n, 20_000), np.random.default_rng(spec["seed"] + 7))
    centroids, _ = kmeans(sample, topic_count_for(n), seed=0)
    timings["topics_kmeans_s"] = time.perf_counter() - started

    model_name = settings.EMBEDDING_MODEL
    width = len(str(n))
    caption_of = lambda i, k: f"synthetic clip {i:0{width}d} from cluster {k:04d}"  # noqa: E731
    lengths = {
        "external_id": len(f"synth-{0:0{width}d}"), "caption": len(caption_of(0, 0)),
        "document": len(video_document(caption_of(0, 0), "", "", [])), "document_hash": 64,
        "embedding_model": len(model_name.encode()), "embedding_document_hash": 64, "language": 2,
    }
    dtype, columns = _copy_dtype(lengths, dim)
    data_rng = np.random.default_rng(spec["seed"] + 1)
    now_us = _timestamps_us(np.array([timezone.now().timestamp()]))[0]
    generate_s = copy_s = 0.0
    sizes = np.zeros(len(centroids), dtype=np.int64)
    chunk = 50_000
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big"))
            for start in range(0, n, chunk):
                t = time.perf_counter()
                m = min(chunk, n - start)
                x, labels = mixture.draw(m, data_rng)
                topics = np.argmax(x @ centroids.T, axis=1)
                sizes += np.bincount(topics, minlength=len(centroids))
                rows = np.zeros(m, dtype=dtype)
                rows["nfields"] = len(columns)
                for name in columns:
                    rows[f"{name}__len"] = lengths.get(name, 0)
                for name in ("creator_id", "embedded_at", "play_count", "like_count", "share_count",
                             "comment_count", "created_at"):
                    rows[f"{name}__len"] = 8
                rows["duration_s__len"] = rows["topic__len"] = 4
                rows["embedding__len"] = 4 + 4 * dim
                ids = range(start, start + m)
                captions = [caption_of(i, k) for i, k in zip(ids, labels)]
                documents = [video_document(c, "", "", []) for c in captions]
                hashes = [document_hash(doc) for doc in documents]
                rows["creator_id"] = marker.id
                rows["external_id"] = [f"synth-{i:0{width}d}".encode() for i in ids]
                rows["caption"] = [c.encode() for c in captions]
                rows["document"] = [doc.encode() for doc in documents]
                rows["document_hash"] = rows["embedding_document_hash"] = [h.encode() for h in hashes]
                rows["embedding_model"] = model_name.encode()
                rows["embedded_at"] = now_us
                rows["embedding__dim"] = dim
                rows["embedding"] = x
                rows["duration_s"] = data_rng.integers(5, 61, m)
                plays = np.floor(data_rng.lognormal(9.0, 2.0, m)).astype(np.int64)
                rows["play_count"] = plays
                rows["like_count"] = plays // 10
                rows["share_count"] = plays // 200
                rows["comment_count"] = plays // 100
                rows["created_at"] = _timestamps_us(1_577_836_800 + data_rng.integers(0, 366 * 86400, m))
                rows["language"] = b"en"
                rows["topic"] = topics
                generate_s += time.perf_counter() - t
                t = time.perf_counter()
                copy.write(rows.tobytes())
                copy_s += time.perf_counter() - t
                if (start // chunk) % 4 == 3:
                    print(f"  {start + m} rows", flush=True)
            t = time.perf_counter()
            copy.write((-1).to_bytes(2, "big", signed=True))
        copy_s += time.perf_counter() - t  # the COPY completes on leaving the block
    timings["generate_s"], timings["copy_s"] = generate_s, copy_s
    Topic.objects.bulk_create(
        Topic(number=i, centroid=c, size=int(sizes[i]), embedding_model=model_name) for i, c in enumerate(centroids)
    )

    # The HNSW index, built after loading (much faster than maintaining it row by row), with the
    # definition of catalog/migrations/0001_initial.py (taken from the model, so it stays in step).
    work_mem_mb = max(512, int(n * 2600 / 2**20) + 256)
    print(f"building the HNSW index (maintenance_work_mem {work_mem_mb} MB, 1 parallel worker) ...", flush=True)
    progress = _IndexProgress()
    progress.start()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"SET maintenance_work_mem = '{work_mem_mb}MB'")
        cursor.execute("SET max_parallel_maintenance_workers = 1")
    try:
        with connection.schema_editor(atomic=False) as editor:
            editor.add_index(Video, _hnsw_index())
    finally:
        progress.done.set()
    timings["index_build_s"] = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("RESET max_parallel_maintenance_workers")
        started = time.perf_counter()
        cursor.execute(f"VACUUM (ANALYZE) {table}")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
    with transaction.atomic():
        marker.bio = json.dumps({"spec": spec, "complete": True, "timings": {k: round(v, 1) for k, v in timings.items()}})
        marker.save(update_fields=["bio"])
    return {k: round(v, 2) for k, v in timings.items()}


def prepare_synthetic(n: int, rebuild: bool) -> dict:
    from django.conf import settings
    from catalog.models import Creator

    spec = synthetic_spec(n, settings.EMBEDDING_DIM)
    if not rebuild and synthetic_ready(spec):
        recorded = json.loads(Creator.objects.get(external_id=MARKER_EXTERNAL_ID).bio)
        return {"generated_now": False, "spec": spec, "build": recorded.get("timings", {})}
    return {"generated_now": True, "spec": spec, "build": build_synthetic(spec)}


def prepare_real() -> dict:
    from django.core.management import call_command
    from django.db import connection

    from catalog.models import Creator, Topic, Video

    if Creator.objects.filter(external_id=MARKER_EXTERNAL_ID).exists():  # a synthetic catalog was here
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {connection.ops.quote_name(Video._meta.db_table)} RESTART IDENTITY CASCADE")
        Topic.objects.all().delete()
        Creator.objects.all().delete()
    started = time.perf_counter()
    import_real_catalog()
    call_command("embed", verbosity=0)  # loads the model only if something is stale
    return {"generated_now": False, "build": {"import_and_embed_s": round(time.perf_counter() - started, 2)}}


def load_vectors() -> tuple[np.ndarray, np.ndarray]:
    """Every stored video vector, ``(ids, vectors)``, through one binary COPY (fast even at 1M)."""
    from django.conf import settings
    from django.db import connection

    from catalog.models import Video

    dim = settings.EMBEDDING_DIM
    row = np.dtype([("nfields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("v_len", ">i4"), ("dim", ">u2"),
                    ("unused", ">u2"), ("v", ">f4", (dim,))])
    buffer = bytearray()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            f"COPY (SELECT id, embedding FROM {connection.ops.quote_name(Video._meta.db_table)} "
            "WHERE embedding IS NOT NULL) TO STDOUT (FORMAT BINARY)"
        ) as copy:
            for data in copy:
                buffer += data
    header = 19  # signature, flags, header extension length (0)
    count = (len(buffer) - header - 2) // row.itemsize
    rows = np.frombuffer(buffer, dtype=row, count=count, offset=header)
    ids, vectors = rows["id"].astype(np.int64), rows["v"].astype(np.float32)
    del rows, buffer
    return ids, vectors


# --- timing the session loop ----------------------------------------------------------------

MOODS = {  # share of batches, and the watch time range (ms) most of their items get
    "engaged": (0.35, (15_000, 40_000)),
    "mid": (0.20, (12_000, 15_000)),
    "low": (0.15, (9_000, 12_000)),
    "skipping": (0.20, (300, 9_000)),
    "away": (0.10, None),  # no event at all: the BATCH edge alone moves the state
}


def simulate_views(session_id, batch, rng: np.random.Generator) -> None:
    from feed.services import record_view

    names = list(MOODS)
    mood = names[rng.choice(len(names), p=[MOODS[m][0] for m in names])]
    watch = MOODS[mood][1]
    if watch is None:
        return
    for item in batch.items:
        low, high = watch if rng.random() < 0.8 else (300, 40_000)
        record_view(session_id, video_id=item.video.id, event_id=uuid.uuid4(), watched_ms=int(rng.integers(low, high)))


def run_sessions(sessions: int, batches: int, rng: np.random.Generator, on_batch=None,
                 algorithm: str | None = None) -> list[dict]:
    """``sessions`` sessions of ``batches`` batches on ``algorithm`` (default: the default
    algorithm); only the next_batch calls are timed."""
    from feed.services import next_batch, start_session

    records = []
    for _ in range(sessions):
        session = start_session(anonymous_key=SESSION_KEY, algorithm=algorithm)
        seen = 0
        for _ in range(batches):
            started = time.perf_counter()
            batch = next_batch(session.id) if on_batch is None else on_batch(session.id)
            elapsed = (time.perf_counter() - started) * 1000
            records.append({"ms": elapsed, "state": batch.state, "batch_type": batch.batch_type, "seen": seen})
            seen += len(batch.items)
            simulate_views(session.id, batch, rng)
    return records


def warm_index(ids: np.ndarray, vectors: np.ndarray, searches: int = 400) -> float:
    """Bring the HNSW index into PostgreSQL's buffers, as a server that has been serving a while
    holds it, so that timings measure searches rather than the first reads of each index page
    (each a system call here; a cold search took twice as long). Wide searches (ef_search 400)
    around stored vectors spread over the catalog; untimed. Returns the seconds it took."""
    from catalog.selectors import VideoCatalog

    started = time.perf_counter()
    picks = np.random.default_rng(11).choice(len(ids), size=min(searches, len(ids)), replace=False)
    wide = VideoCatalog(ef_search=400)
    for start in range(0, len(picks), 8):
        wide.search_many(list(vectors[picks[start:start + 8]]), 10)
    return round(time.perf_counter() - started, 1)


def percentiles(values) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"n": int(len(values)), "p50_ms": float(np.percentile(values, 50)), "p95_ms": float(np.percentile(values, 95)),
            "p99_ms": float(np.percentile(values, 99)), "mean_ms": float(values.mean()), "max_ms": float(values.max())}


def _sql_shape(sql: str) -> str:
    sql = re.sub(r"'\{[^']*\}'", "'{array}'", sql)  # e.g. the vectors of one ANN statement
    sql = re.sub(r"'\[[-0-9.e,\s]+\]'(::vector)?", "'[vector]'", sql)
    sql = re.sub(r"ARRAY\[[^\]]*\]|\([0-9, ]{20,}\)", "(ids)", sql)
    sql = re.sub(r"'[0-9a-f-]{32,36}'(::uuid)?", "'uuid'", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "N", sql)
    return re.sub(r"\s+", " ", sql).strip()[:150]


def profile_queries(sessions: int, batches: int, rng) -> dict:
    """The SQL of each batch (untimed pass): queries per batch and per state, the costly statements."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from feed.services import next_batch

    per_state = defaultdict(list)
    shapes: dict[str, list[float]] = defaultdict(list)

    def captured(session_id):
        with CaptureQueriesContext(connection) as ctx:
            batch = next_batch(session_id)
        per_state[batch.state].append(len(ctx.captured_queries))
        for query in ctx.captured_queries:
            shapes[_sql_shape(query["sql"])].append(float(query["time"]) * 1000)
        return batch

    records = run_sessions(sessions, batches, rng, on_batch=captured)
    total_batches = len(records)
    top = sorted(shapes.items(), key=lambda kv: -sum(kv[1]))[:10]
    return {
        "batches": total_batches,
        "queries_per_batch": {state: round(statistics.mean(counts), 1) for state, counts in sorted(per_state.items())},
        "queries_per_batch_all": round(statistics.mean([c for counts in per_state.values() for c in counts]), 1),
        "top_statements": [
            {"sql": shape, "calls_per_batch": round(len(times) / total_batches, 2),
             "mean_ms": round(statistics.mean(times), 3), "ms_per_batch": round(sum(times) / total_batches, 3)}
            for shape, times in top
        ],
    }


def profile_cpu(batches: int, rng) -> str:
    from feed.services import next_batch

    profiler = cProfile.Profile()
    run_sessions(1, batches, rng, on_batch=lambda sid: profiler.runcall(next_batch, sid))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


# --- recall -----------------------------------------------------------------------------------

def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows by cosine for each query (rows are unit vectors): ``(rows, sims)``."""
    rows = np.empty((len(queries), k), dtype=np.int64)
    sims = np.empty((len(queries), k), dtype=np.float32)
    for start in range(0, len(queries), 32):
        block = vectors @ queries[start:start + 32].T  # n x 32
        part = np.argpartition(-block, k, axis=0)[:k]  # k x 32
        part_sims = np.take_along_axis(block, part, axis=0)
        order = np.argsort(-part_sims, axis=0, kind="stable")
        rows[start:start + 32] = np.take_along_axis(part, order, axis=0).T
        sims[start:start + 32] = np.take_along_axis(part_sims, order, axis=0).T
    return rows, sims


def timed_recall_at_10(catalog, queries, exact10: list[set], per_call: int = 1) -> tuple[list[float], list[float]]:
    """``(recall@10 of each query, ms of each search_many call)``, ``per_call`` queries a call."""
    recalls, times = [], []
    for start in range(0, len(queries) - per_call + 1, per_call):
        started = time.perf_counter()
        found = catalog.search_many(list(queries[start:start + per_call]), 10)
        times.append((time.perf_counter() - started) * 1000)
        recalls += [len(truth & {pk for pk, _ in hits}) / 10 for truth, hits in zip(exact10[start:start + per_call], found)]
    return recalls, times


def measure_recall(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, pg_exact_queries: int) -> dict:
    from django.db import connection, transaction

    from catalog.selectors import VideoCatalog, _connection_breadth, _vector_literal

    catalog = VideoCatalog()
    top_rows, top_sims = exact_top(vectors, queries, SEEN_POOL)
    exact10 = [set(ids[r[:10]].tolist()) for r in top_rows]

    ann_recall, ann_ms = timed_recall_at_10(catalog, queries, exact10)

    # The over-fetch path next_batch takes: half of the 300 nearest already seen, 20 wanted.
    seen_recall, seen_ms = [], []
    for q, rows in zip(queries, top_rows):
        ranked = ids[rows].tolist()
        seen = frozenset(ranked[1::2][:SEEN_COUNT])
        truth = set([pk for pk in ranked if pk not in seen][:SEEN_K])
        started = time.perf_counter()
        found = catalog.search(q, SEEN_K, seen)
        seen_ms.append((time.perf_counter() - started) * 1000)
        seen_recall.append(len(truth & {pk for pk, _ in found}) / SEEN_K)

    # Multi-interest batches (states with alpha > 0) search several queries at once, each at a
    # share of the breadth (catalog.selectors.SearchBreadth): recall@10 of each query there.
    shared = []
    for count in MULTI_QUERY_COUNTS:
        recalls, times = timed_recall_at_10(catalog, queries, exact10, per_call=count)
        shared.append({"queries": count, "ef_search": _connection_breadth().per_query(count),
                       "recall_at_10": statistics.mean(recalls), "p50_ms": float(np.percentile(times, 50))})

    sweep = []
    for ef in EF_SWEEP:
        recalls, times = timed_recall_at_10(VideoCatalog(ef_search=ef), queries, exact10)
        sweep.append({"ef_search": ef, "recall_at_10": statistics.mean(recalls),
                      "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))})

    numpy_ms = []
    for q in queries[:20]:
        started = time.perf_counter()
        sims = vectors @ q
        np.argpartition(-sims, 10)[:10]
        numpy_ms.append((time.perf_counter() - started) * 1000)

    # PostgreSQL exact search (sequential scan + top-k sort): what VideoCatalog.search falls back
    # to when a session has seen more than ~1000 videos.
    pg_ms, pg_recall = [], []
    table = connection.ops.quote_name("catalog_video")
    for q, truth in list(zip(queries, exact10))[:pg_exact_queries]:
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute(f"SELECT id FROM {table} WHERE embedding IS NOT NULL ORDER BY embedding <=> %s::vector LIMIT 10",
                           [_vector_literal(q)])
            found = {row[0] for row in cursor.fetchall()}
        pg_ms.append((time.perf_counter() - started) * 1000)
        pg_recall.append(len(truth & found) / 10)

    random_pairs = vectors[np.random.default_rng(1).integers(0, len(vectors), 2000)]
    return {
        "queries": len(queries),
        "ef_search": _connection_breadth().single,
        "shared_breadth": shared,
        "recall_at_10_search": statistics.mean(ann_recall),
        "min_recall_at_10_search": min(ann_recall),
        "recall_at_20_with_150_seen": statistics.mean(seen_recall),
        "search_ms": percentiles(ann_ms),
        "search_with_150_seen_ms": percentiles(seen_ms),
        "exact_numpy_ms": percentiles(numpy_ms),
        "exact_postgres_ms": percentiles(pg_ms) if pg_ms else None,
        "exact_postgres_recall_at_10": statistics.mean(pg_recall) if pg_recall else None,
        "ef_search_sweep": sweep,
        "data": {
            "query_1nn_cosine": float(top_sims[:, 0].mean()),
            "query_10nn_cosine": float(top_sims[:, 9].mean()),
            "random_pair_cosine": float(np.mean(np.sum(random_pairs[:1000] * random_pairs[1000:], axis=1))),
        },
    }


def make_queries(size, ids, vectors, count: int) -> tuple[np.ndarray, str]:
    from django.conf import settings

    rng = np.random.default_rng(42)
    if size == "real":
        # Held-out stand-ins: stored vectors nudged as add_noise(v, mu=0.3) would (cosine ~0.96).
        base = vectors[rng.choice(len(vectors), size=count, replace=False)]
        noisy = base + 0.3 * rng.standard_normal(base.shape).astype(np.float32) / math.sqrt(base.shape[1])
        return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32), \
            "stored vectors + noise (mu 0.3)"
    mixture = Mixture(synthetic_spec(size, settings.EMBEDDING_DIM))
    queries, _ = mixture.draw(count, np.random.default_rng(synthetic_spec(size, 0)["seed"] + 2))
    return queries, "held-out draws from the same mixture (not stored)"


# --- one size (worker) ------------------------------------------------------------------------

def worker(size, args) -> dict:
    setup_django(database_for(size))
    from django.conf import settings
    from django.db import connection

    from algorithms.selectors import default_algorithm
    from feed.models import FeedSession

    settings.DEBUG = False  # as in production: no per-query logging in connection.queries
    label = size_label(size)
    result = {"catalog": "real" if size == "real" else "synthetic", "label": label,
              "database": connection.settings_dict["NAME"], "load_before": os.getloadavg()}
    result["prepare"] = prepare_real() if size == "real" else prepare_synthetic(size, args.rebuild)
    # A new connection, as a server process would open: it takes the HNSW search breadth for
    # the catalog's size now (catalog.selectors.set_search_breadth), not for the empty database
    # this process may have connected to before building it.
    connection.close()

    started = time.perf_counter()
    ids, vectors = load_vectors()
    result["vectors"] = int(len(ids))
    result["load_vectors_s"] = round(time.perf_counter() - started, 2)
    result["index"] = _index_state()
    algorithm = default_algorithm()
    result["algorithm"] = {"slug": algorithm.slug, "batch_size": algorithm.batch_size}
    print(f"[{label}] {len(ids)} vectors, HNSW index {result['index']['bytes'] / 2**20:.0f} MiB; "
          f"algorithm {algorithm.slug} (batch size {algorithm.batch_size})", flush=True)

    FeedSession.objects.filter(anonymous_key=SESSION_KEY).delete()  # earlier runs
    result["warm_up_s"] = warm_index(ids, vectors)
    print(f"[{label}] warmed the HNSW index in PostgreSQL's buffers ({result['warm_up_s']} s)", flush=True)
    rng = np.random.default_rng(7)
    per_session = max(1, args.batches // args.sessions)
    run_sessions(1, min(10, per_session), rng)  # warm-up: caches, connections, imports
    records = run_sessions(args.sessions, per_session, rng)
    result["latency"] = percentiles([r["ms"] for r in records])
    by_state = defaultdict(list)
    for r in records:
        by_state[r["state"]].append(r)
    result["per_state"] = [
        {"state": state, "batch_type": rows[0]["batch_type"], **percentiles([r["ms"] for r in rows])}
        for state, rows in sorted(by_state.items(), key=lambda kv: ["0", "H", "M", "L", "L-R"].index(kv[0])
                                  if kv[0] in ["0", "H", "M", "L", "L-R"] else 9)
    ]
    result["sessions"], result["batches_per_session"] = args.sessions, per_session
    # The same session loop (same viewers: same rng seed) on each compared algorithm, right after.
    result["by_algorithm"] = [{"slug": algorithm.slug, **result["latency"]}]
    for slug in args.compare:
        if slug == algorithm.slug:
            continue
        print(f"[{label}] the same sessions on {slug} ...", flush=True)
        compared_rng = np.random.default_rng(7)  # as the default's: its warm-up, then its timed sessions
        run_sessions(1, min(10, per_session), compared_rng, algorithm=slug)
        compared = run_sessions(args.sessions, per_session, compared_rng, algorithm=slug)
        result["by_algorithm"].append({"slug": slug, **percentiles([r["ms"] for r in compared])})
    result["max_seen"] = max(r["seen"] for r in records)

    print(f"[{label}] profiling the SQL of each batch ...", flush=True)
    result["sql"] = profile_queries(2, per_session, np.random.default_rng(8))
    if args.long_session:
        print(f"[{label}] one long session of {args.long_session} batches ...", flush=True)
        long_records = run_sessions(1, args.long_session, np.random.default_rng(9))
        buckets = defaultdict(list)
        for r in long_records:
            buckets[r["seen"] // 250 * 250].append(r["ms"])
        result["long_session"] = [{"seen_from": b, "seen_to": b + 249, **percentiles(ms)} for b, ms in sorted(buckets.items())]
    if args.profile:
        result["cprofile"] = profile_cpu(per_session, np.random.default_rng(10))
        print(result["cprofile"])

    print(f"[{label}] recall against exact search ({args.queries} queries) ...", flush=True)
    queries, kind = make_queries(size, ids, vectors, args.queries)
    pg_queries = 20 if len(ids) <= 200_000 else 5
    result["recall"] = {"query_kind": kind, **measure_recall(ids, vectors, queries, pg_queries)}
    result["load_after"] = os.getloadavg()
    FeedSession.objects.filter(anonymous_key=SESSION_KEY).delete()
    return result


# --- reporting --------------------------------------------------------------------------------

def _r(x, digits=2):
    return None if x is None else round(x, digits)


PREP_COLUMNS = [("import+embed s", "import_and_embed_s"), ("topics s", "topics_kmeans_s"), ("generate s", "generate_s"),
                ("COPY s", "copy_s"), ("HNSW build s", "index_build_s"), ("VACUUM ANALYZE s", "vacuum_analyze_s")]


def report(results: list[dict]) -> None:
    ok = [r for r in results if "error" not in r]
    if ok:
        print_table("next_batch latency (ms), timed alone in a session loop (start_session, next_batch, record_view)", [
            {"catalog": r["label"], "vectors": r["vectors"], "batches": r["latency"]["n"],
             "p50": _r(r["latency"]["p50_ms"]), "p95": _r(r["latency"]["p95_ms"]), "p99": _r(r["latency"]["p99_ms"]),
             "mean": _r(r["latency"]["mean_ms"]), "max": _r(r["latency"]["max_ms"]),
             "sql/batch": r["sql"]["queries_per_batch_all"], "max seen": r["max_seen"]}
            for r in ok
        ])
        print_table("next_batch latency by algorithm (ms): the same session loop, one after the other", [
            {"catalog": r["label"], "algorithm": a["slug"], "batches": a["n"], "p50": _r(a["p50_ms"]),
             "p95": _r(a["p95_ms"]), "p99": _r(a["p99_ms"]), "mean": _r(a["mean_ms"])}
            for r in ok for a in r.get("by_algorithm", [])
        ])
        print_table("next_batch latency by state served (ms)", [
            {"catalog": r["label"], "state": s["state"], "type": s["batch_type"], "batches": s["n"],
             "p50": _r(s["p50_ms"]), "p95": _r(s["p95_ms"]), "p99": _r(s["p99_ms"]),
             "sql/batch": r["sql"]["queries_per_batch"].get(s["state"], "")}
            for r in ok for s in r["per_state"]
        ])
        print_table("ANN stage vs exact search (HNSW m=16 ef_construction=64; ef_search as the product sets it)", [
            {"catalog": r["label"], "vectors": r["vectors"], "queries": r["recall"]["queries"],
             "ef_search": r["recall"].get("ef_search", ""),
             "recall@10 search": _r(r["recall"]["recall_at_10_search"], 3),
             "recall@20 150 seen": _r(r["recall"]["recall_at_20_with_150_seen"], 3),
             "search p50/p95 ms": f"{r['recall']['search_ms']['p50_ms']:.2f}/{r['recall']['search_ms']['p95_ms']:.2f}",
             "150-seen p50 ms": _r(r["recall"]["search_with_150_seen_ms"]["p50_ms"]),
             "exact numpy ms": _r(r["recall"]["exact_numpy_ms"]["p50_ms"]),
             "exact pg ms": _r((r["recall"]["exact_postgres_ms"] or {}).get("p50_ms")),
             "10-NN cos": _r(r["recall"]["data"]["query_10nn_cosine"], 3),
             "random cos": _r(r["recall"]["data"]["random_pair_cosine"], 3)}
            for r in ok
        ])
        print_table("multi-interest batches: several queries in one search_many, each at its share of the breadth", [
            {"catalog": r["label"], "queries": m["queries"], "ef_search each": m["ef_search"],
             "recall@10": _r(m["recall_at_10"], 3), "p50 ms (all queries)": _r(m["p50_ms"])}
            for r in ok for m in r["recall"].get("shared_breadth", [])
        ])
        print_table("hnsw.ef_search sweep (VideoCatalog.search, k=10)", [
            {"catalog": r["label"], "ef_search": s["ef_search"], "recall@10": _r(s["recall_at_10"], 3),
             "p50 ms": _r(s["p50_ms"]), "p95 ms": _r(s["p95_ms"])}
            for r in ok for s in r["recall"]["ef_search_sweep"]
        ])
        print_table("catalog preparation (s); synthetic catalogs are kept between runs", [
            {"catalog": r["label"], "vectors": r["vectors"], "built this run": r["prepare"]["generated_now"],
             **{column: r["prepare"]["build"].get(key, "") for column, key in PREP_COLUMNS},
             "index MiB": round(r["index"]["bytes"] / 2**20), "load 1-min before/after":
             f"{r['load_before'][0]:.1f}/{r['load_after'][0]:.1f}"}
            for r in ok
        ])
        for r in ok:
            if r.get("long_session"):
                print_table(f"{r['label']}: one long session, latency by videos already seen (ms)", [
                    {"seen": f"{b['seen_from']}-{b['seen_to']}", "batches": b["n"], "p50": _r(b["p50_ms"]),
                     "p95": _r(b["p95_ms"]), "max": _r(b["max_ms"])} for b in r["long_session"]
                ])
        for r in ok:
            print(f"\n{r['label']}: the costliest SQL per batch")
            for s in r["sql"]["top_statements"][:6]:
                print(f"  {s['ms_per_batch']:8.3f} ms/batch  {s['calls_per_batch']:5.2f} calls x {s['mean_ms']:.3f} ms  {s['sql'][:110]}")
    print()
    for r in ok:
        kind = r["recall"]["query_kind"]
        p95 = r["latency"]["p95_ms"]
        # The lowest recall of any way the product searches: one query, or several sharing a breadth.
        recall = min([r["recall"]["recall_at_10_search"]] + [m["recall_at_10"] for m in r["recall"].get("shared_breadth", [])])
        line = f"{r['label']}: p95 {p95:.1f} ms"
        if r["vectors"] == P95_TARGET_SIZE:
            line += f" ({'meets' if p95 <= P95_TARGET_MS else 'MISSES'} the {P95_TARGET_MS:.0f} ms target)"
        line += f"; recall@10 {recall:.3f} ({'meets' if recall >= RECALL_TARGET else 'MISSES'} the {RECALL_TARGET} target; queries: {kind})"
        print(line)
    for r in results:
        if "error" in r:
            print(f"{r['label']}: FAILED: {r['error']}")
    if any(r["catalog"] == "synthetic" for r in ok):
        print("synthetic catalogs: clustered unit vectors (1000 log-normal-sized clusters on an anisotropic "
              "spectrum around a shared direction), not uniform noise; see Mixture in bench/batch.py")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="real,100000,1000000",
                        help="comma-separated: real, or a number of synthetic vectors (100000, 100k, 1m)")
    parser.add_argument("--batches", type=int, default=300, help="timed next_batch calls per size (rounded down to a multiple of --sessions)")
    parser.add_argument("--sessions", type=int, default=10, help="sessions the timed batches are spread over")
    parser.add_argument("--queries", type=int, default=200, help="queries for recall")
    parser.add_argument("--long-session", type=int, default=0, metavar="BATCHES",
                        help="also time one session this long, by history size (0: skip)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of next_batch")
    parser.add_argument("--compare", default="seed-default", type=lambda text: [s for s in text.split(",") if s],
                        help="comma-separated algorithm slugs also timed with the same sessions, after the default "
                             "algorithm (default: seed-default; '' for none)")
    parser.add_argument("--rebuild", action="store_true", help="regenerate synthetic catalogs even if they exist")
    parser.add_argument("--from-json", metavar="PATH", help="print the tables of an earlier run's JSON and exit")
    parser.add_argument("--size", type=parse_size, help=argparse.SUPPRESS)  # worker mode: one size
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.from_json:
        with open(args.from_json) as f:
            payload = json.load(f)
        print(f"machine: {json.dumps(payload['machine'])}")
        report(payload["results"])
        return
    if args.size is not None:
        result = worker(args.size, args)
        if args.json_out:
            with open(args.json_out, "w") as out:
                json.dump(result, out)
        else:
            report([result])
        return

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if os.environ.get("DATABASE_URL") and len(sizes) > 1:
        sys.exit("with DATABASE_URL set every size would share one database: run one size per run (--sizes N)")
    if not os.environ.get("DATABASE_URL"):
        # Keep the embedded server up between the workers (it stops when its last user exits).
        sys.path.insert(0, str(REPO))
        from tokfeed.embedded_db.server import ensure_server

        ensure_server(os.environ.get("TOKFEED_DATA_DIR", str(REPO / "var")))
    results = []
    for size in sizes:
        print(f"\n=== {size_label(size)} ===", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            path = tmp.name
        command = [sys.executable, __file__, "--size", str(size), "--json-out", path, "--batches", str(args.batches),
                   "--sessions", str(args.sessions), "--queries", str(args.queries),
                   "--long-session", str(args.long_session), "--compare", ",".join(args.compare)]
        command += ["--profile"] * args.profile + ["--rebuild"] * args.rebuild
        started = time.perf_counter()
        code = subprocess.call(command)
        try:
            if code != 0:
                raise RuntimeError(f"worker exited with status {code}")
            with open(path) as f:
                result = json.load(f)
            result["wall_s"] = round(time.perf_counter() - started, 1)
        except (RuntimeError, ValueError) as exc:
            result = {"label": size_label(size), "catalog": "real" if size == "real" else "synthetic", "error": str(exc)}
        finally:
            os.unlink(path)
        results.append(result)
    info = machine()
    payload = {
        "machine": {**info, "load_avg": os.getloadavg()},
        "targets": {"p95_ms": P95_TARGET_MS, "p95_at_vectors": P95_TARGET_SIZE, "recall_at_10": RECALL_TARGET},
        "args": {k: v for k, v in vars(args).items() if k not in ("size", "json_out", "from_json")},
        "results": results,
    }
    print(f"\nmachine: {json.dumps(payload['machine'])}")
    try:
        report(results)
    finally:
        write_json("batch", payload)


if __name__ == "__main__":
    main()
