"""Benchmark of the embedding job on the real catalog (1000 videos, 802 creators).

Compares, in one run and on the same documents, the ``embed`` job end to end (documents
refreshed, stale rows planned, Celery tasks run eagerly, vectors written to PostgreSQL) with a
bare ``model.encode`` of those documents. The model is loaded once beforehand for both, as a
long-lived worker would have it; its load time is reported on its own line.
Target: the job reaches >= 0.9 of the bare encode's documents per second.

    .venv/bin/python bench/embed.py [--repeat 3] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

from common import import_real_catalog, machine, print_table, setup_django, write_json


def run(device: str, batch_size: int, repeat: int) -> dict:
    import torch
    from django.conf import settings
    from django.core.management import call_command

    from catalog.embedding import load_model, resolve_device
    from catalog.models import Creator, Video

    device = resolve_device(device)
    started = time.perf_counter()
    model = load_model(settings.EMBEDDING_MODEL, device)
    load_s = time.perf_counter() - started

    call_command("embed", device=device, batch_size=batch_size, verbosity=0)  # documents in place
    video_docs = list(Video.objects.order_by("id").values_list("document", flat=True))
    bios = [b.strip() for b in Creator.objects.values_list("bio", flat=True) if b.strip()]
    documents = len(video_docs) + len(bios)

    bare, job = [], []
    for _ in range(repeat):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        model.encode(video_docs, batch_size=batch_size, normalize_embeddings=True)
        model.encode(bios, batch_size=batch_size, normalize_embeddings=True)
        if device == "cuda":
            torch.cuda.synchronize()
        bare.append(time.perf_counter() - t)

        t = time.perf_counter()
        call_command("embed", device=device, batch_size=batch_size, force=True, verbosity=0)
        job.append(time.perf_counter() - t)

    bare_s, job_s = statistics.median(bare), statistics.median(job)
    result = {
        "device": device,
        "documents": documents,
        "batch_size": batch_size,
        "model_load_s": round(load_s, 3),
        "bare_encode_s": round(bare_s, 3),
        "job_s": round(job_s, 3),
        "bare_docs_per_s": round(documents / bare_s, 1),
        "job_docs_per_s": round(documents / job_s, 1),
        "ratio": round(bare_s / job_s, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "runs_bare_s": [round(x, 3) for x in bare],
        "runs_job_s": [round(x, 3) for x in job],
    }
    if device == "cuda":
        result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    setup_django()
    import_real_catalog()
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    results = [run(device, args.batch_size, args.repeat) for device in devices]
    print_table(
        "embed job vs bare model.encode (median of %d runs)" % args.repeat,
        [
            {k: r[k] for k in ["device", "documents", "bare_docs_per_s", "job_docs_per_s", "ratio", "model_load_s", "peak_rss_mib"]}
            for r in results
        ],
    )
    for r in results:
        verdict = "meets" if r["ratio"] >= 0.9 else "MISSES"
        print(f"{r['device']}: job reaches {r['ratio']:.2f} of bare encode ({verdict} the 0.9 target)")
    write_json("embed", {"machine": machine(), "results": results})


if __name__ == "__main__":
    main()
