"""What every benchmark shares: Django on a database of its own, the real catalog, reporting.

Benchmarks never touch the project's database: with the embedded default they use a separate
database (``tokfeed_bench``) on the same server; with ``DATABASE_URL`` set, point it at a
database you can spare.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRENDING = REPO.parent / "shared" / "data" / "tiktok-trending-2020.json"
RESULTS = REPO / "bench" / "results"


def setup_django(db_name: str = "tokfeed_bench") -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokfeed.settings")
    from django.conf import settings

    if not os.environ.get("DATABASE_URL"):
        settings.DATABASES["default"]["NAME"] = db_name
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def import_real_catalog() -> None:
    from django.core.management import call_command

    if not TRENDING.exists():
        sys.exit(f"the real catalog is missing: {TRENDING}")
    call_command("import_trending", str(TRENDING), verbosity=0)


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
    info["torch_threads"] = torch.get_num_threads()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def print_table(title: str, rows: list[dict]) -> None:
    if not rows:  # e.g. an older run's JSON, read with --from-json, that lacks the measurement
        return
    columns = list(rows[0])
    widths = [max(len(str(c)), *(len(_fmt(r[c])) for r in rows)) for c in columns]
    print(f"\n{title}")
    print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(_fmt(row[c]).ljust(w) for c, w in zip(columns, widths)))


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {path}")
    return path
