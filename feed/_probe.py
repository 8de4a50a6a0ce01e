"""TEMPORARY instrumentation (not committed): per-event timing spans in the web workers."""
import json, os, threading, time
ENABLED = bool(os.environ.get("TOKFEED_PROBE"))
_records = []
_lock = threading.Lock()
batching = {}
running = {"revision": 0, "batch": 0, "apply": 0}

def record(**kw):
    if not ENABLED:
        return
    with _lock:
        _records.append(kw)
        if len(_records) >= 100:
            flush()

def flush():
    global _records
    if not _records:
        return
    with open(f"{os.environ['TOKFEED_PROBE']}/probe-{os.getpid()}.jsonl", "a") as f:
        for r in _records:
            f.write(json.dumps(r) + "\n")
    _records = []

import atexit
atexit.register(lambda: (_lock.acquire(), flush(), _lock.release()))
