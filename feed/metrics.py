"""The feed's Prometheus metrics (exposed at ``/metrics``: ``tokfeed.metrics``).

Counted once per applied signal and served batch, after the use case's transaction commits,
beside the events it publishes (``services._publish_signal``, ``services._publish_batch``):
a rolled-back use case counts nothing, a resent event (a duplicate) counts nothing, whichever
transport carried it (websocket, HTTP fallback, partner API).
"""
from prometheus_client import Counter, Histogram

SIGNALS_APPLIED = Counter("tokfeed_feed_signals_applied", "Signals applied to feed sessions, by type.", ["type"])
BATCHES_SERVED = Counter("tokfeed_feed_batches_served",
                         "Batches served, by algorithm and the state that served them.", ["algorithm", "state"])
BATCH_BUILD_SECONDS = Histogram(
    "tokfeed_feed_batch_build_seconds", "Time to build a batch (recall, ranking, writing it), by algorithm.",
    ["algorithm"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def count_signal(signal: str) -> None:
    SIGNALS_APPLIED.labels(signal).inc()


def count_batch(algorithm: str, state: str, build_ms: float) -> None:
    BATCHES_SERVED.labels(algorithm, state).inc()
    BATCH_BUILD_SECONDS.labels(algorithm).observe(build_ms / 1000)
