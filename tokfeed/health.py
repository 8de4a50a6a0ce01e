"""Health checks for load balancers and orchestrators: outside ``/api/`` (no key), no rate limit,
never redirected to HTTPS (``SECURE_REDIRECT_EXEMPT``).

- ``GET /healthz`` (liveness): the process is up and answers; touches nothing else. 200
  ``{"status": "ok"}``.
- ``GET /readyz`` (readiness): this process can do its work. 200 when every check passes, else
  503; the body is ``{"status": "ready" | "not ready", "checks": {name: {"status", "detail"}}}``
  with each check's status ``ok``, ``failing`` or ``not configured``:
  - ``database``: PostgreSQL answers, with the ``vector`` extension installed (its version);
  - ``channel_layer``: Redis answers, when ``REDIS_URL`` sets the channel layer;
  - ``broker``: the Celery broker answers, when ``CELERY_BROKER_URL`` is set;
  - ``embedding_model``: the model's files are on disk where ``EMBEDDING_MODEL`` says (checked,
    not loaded: a probe every few seconds must not load torch);
  - ``cross_encoder``: the same of the partner funnel's cross-encoder, when ``CROSS_ENCODER_MODEL``
    is set.
  A failing check's detail names the error; a check's change of status is logged once.

Each check is bounded: a few seconds for Redis and the broker, ``DATABASE_POOL_TIMEOUT`` for a
database connection.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)

#: Seconds a readiness probe waits for Redis or the broker.
CHECK_TIMEOUT_S = 2

OK, FAILING, NOT_CONFIGURED = "ok", "failing", "not configured"


class NotConfigured(Exception):
    """This deployment does not use the part the check is about."""


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the vector extension is not installed in this database (run manage.py migrate)")
    return f"pgvector {row[0]}"


def check_channel_layer() -> str:
    if not settings.REDIS_URL:
        raise NotConfigured("in-memory channel layer (REDIS_URL is unset): one process only")
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT_S,
                                  socket_timeout=CHECK_TIMEOUT_S)
    try:
        client.ping()
    finally:
        client.close()
    return "redis answers"


def check_broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        raise NotConfigured("tasks run in-process (CELERY_BROKER_URL is unset)")
    from kombu import Connection

    # A connection of its own to the configured URL: a probe leaves the Celery app's state alone.
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT_S) as broker:
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_TIMEOUT_S)
        return f"{broker.transport_cls} broker answers"


def check_embedding_model() -> str:
    from catalog.embedding import check_model_files

    return check_model_files(settings.EMBEDDING_MODEL)


def check_cross_encoder() -> str:
    if not settings.CROSS_ENCODER_MODEL:
        raise NotConfigured("no cross-encoder (CROSS_ENCODER_MODEL is unset)")
    from algorithms.cross_encoder import check_model_folder

    return check_model_folder(settings.CROSS_ENCODER_MODEL)


CHECKS = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "broker": check_broker,
    "embedding_model": check_embedding_model,
    "cross_encoder": check_cross_encoder,
}

# Each check's last status in this process, to log changes rather than every probe.
_last_status: dict[str, str] = {}


def run_check(name: str, check) -> dict:
    try:
        result = {"status": OK, "detail": check()}
    except NotConfigured as reason:
        result = {"status": NOT_CONFIGURED, "detail": str(reason)}
    except Exception as exc:  # any failure of the part checked is "not ready", never a 500
        result = {"status": FAILING, "detail": f"{type(exc).__name__}: {exc}".strip()}
    if _last_status.get(name, OK) != result["status"] and result["status"] != NOT_CONFIGURED:
        log = logger.info if result["status"] == OK else logger.warning
        log("readiness check %s: %s (%s)", name, result["status"], result["detail"])
    _last_status[name] = result["status"]
    return result


@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request):
    checks = {name: run_check(name, check) for name, check in CHECKS.items()}
    ready = all(result["status"] != FAILING for result in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)
