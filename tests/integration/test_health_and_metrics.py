"""Health checks and metrics in one process: /healthz, /readyz against the real database, Redis
and model folder (and against parts that are down), /metrics and who may read it, and the feed's
counters counting each applied signal and served batch once, after commit.

Several processes adding up their metrics, and the websocket gauge, are tested on the production
server itself (``test_serve.py``).
"""
import uuid

from prometheus_client import REGISTRY
from rest_framework.settings import api_settings

from feed import services
from tests.integration.test_consumer import REDIS_URL

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def metric(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_healthz_answers_without_touching_anything(client):
    response = client.get("/healthz")  # no database access here: pytest-django would refuse it
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"] and "sessionid" not in response.cookies
    assert client.post("/healthz").status_code == 405


def test_readyz_checks_the_database_and_the_model_and_says_what_is_not_configured(db, client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "ok" and body["checks"]["database"]["detail"].startswith("pgvector 0.")
    assert body["checks"]["embedding_model"]["status"] == "ok"
    # The test settings have the in-memory layer and eager tasks: nothing to check, not a failure.
    assert body["checks"]["channel_layer"]["status"] == "not configured"
    assert body["checks"]["broker"]["status"] == "not configured"
    assert body["checks"]["cross_encoder"]["status"] == "not configured"


def test_readyz_checks_redis_and_the_broker_when_they_are_configured(db, client, settings):
    settings.REDIS_URL = REDIS_URL
    settings.CELERY_TASK_ALWAYS_EAGER, settings.CELERY_BROKER_URL = False, REDIS_URL
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["checks"]["channel_layer"] == {"status": "ok", "detail": "redis answers"}
    assert body["checks"]["broker"] == {"status": "ok", "detail": "redis broker answers"}


def test_readyz_is_503_naming_each_part_that_is_down(db, client, settings, tmp_path):
    settings.REDIS_URL = UNREACHABLE_REDIS
    settings.CELERY_TASK_ALWAYS_EAGER, settings.CELERY_BROKER_URL = False, UNREACHABLE_REDIS
    (tmp_path / "modules.json").write_text("[]")  # a model folder without its weights
    settings.EMBEDDING_MODEL = str(tmp_path)
    settings.CROSS_ENCODER_MODEL = str(tmp_path / "no-such-model")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    checks = body["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["channel_layer"]["status"] == "failing" and "ConnectionError" in checks["channel_layer"]["detail"]
    assert checks["broker"]["status"] == "failing" and checks["broker"]["detail"]
    assert checks["embedding_model"]["status"] == "failing"
    assert "config.json" in checks["embedding_model"]["detail"] and "model.safetensors" in checks["embedding_model"]["detail"]
    assert checks["cross_encoder"]["status"] == "failing" and "no config.json" in checks["cross_encoder"]["detail"]


def test_probes_are_not_redirected_to_https(db, client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/api/schema/").status_code == 301  # everything else is
    for url in ("/healthz", "/readyz", "/metrics"):
        assert client.get(url).status_code == 200, url


def test_metrics_are_served_to_allowed_addresses_only(db, client, settings, monkeypatch):
    response = client.get("/metrics")  # the test client is 127.0.0.1: allowed by default
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "# TYPE tokfeed_websockets_open gauge" in response.content.decode()
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    # Through one trusted proxy on this machine, the client is the one it names, not the proxy.
    monkeypatch.setattr(api_settings, "NUM_PROXIES", 1)
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "203.0.113.0/24"]
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200
    assert client.get("/metrics").status_code == 403  # 127.0.0.1 is no longer in the list


def test_api_requests_are_counted_by_endpoint_and_status(api_client, client):
    labels = {"view": "creator-list", "method": "GET"}
    before_ok = metric("django_http_responses_total_by_status_view_method_total", status="200", **labels)
    before_404 = metric("django_http_responses_total_by_status_view_method_total", status="404",
                        view="creator-detail", method="GET")
    assert api_client.get("/api/v1/creators/").status_code == 200
    assert api_client.get("/api/v1/creators/999999999/").status_code == 404
    page = client.get("/metrics").content.decode()
    assert metric("django_http_responses_total_by_status_view_method_total", status="200", **labels) == before_ok + 1
    assert metric("django_http_responses_total_by_status_view_method_total", status="404",
                  view="creator-detail", method="GET") == before_404 + 1
    assert 'view="creator-list"' in page


def test_each_applied_signal_and_served_batch_is_counted_once_after_commit(
        catalog_db, django_capture_on_commit_callbacks):
    session = services.start_session(algorithm="seed-default")
    signals_before = metric("tokfeed_feed_signals_applied_total", type="HIGH_ATTN")
    batches_before = metric("tokfeed_feed_batches_served_total", algorithm="seed-default", state="0")
    builds_before = metric("tokfeed_feed_batch_build_seconds_count", algorithm="seed-default")

    with django_capture_on_commit_callbacks(execute=False):  # never committed: counts nothing
        video = services.next_batch(session.id).items[0].video.pk
    assert metric("tokfeed_feed_batches_served_total", algorithm="seed-default", state="0") == batches_before

    session = services.start_session(algorithm="seed-default")
    with django_capture_on_commit_callbacks(execute=True):
        video = services.next_batch(session.id).items[0].video.pk
    event_id = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        services.record_view(session.id, video_id=video, event_id=event_id, watched_ms=16000)
    with django_capture_on_commit_callbacks(execute=True):  # resent: a duplicate counts nothing
        assert services.record_view(session.id, video_id=video, event_id=event_id, watched_ms=16000).duplicate

    assert metric("tokfeed_feed_signals_applied_total", type="HIGH_ATTN") == signals_before + 1
    assert metric("tokfeed_feed_batches_served_total", algorithm="seed-default", state="0") == batches_before + 1
    assert metric("tokfeed_feed_batch_build_seconds_count", algorithm="seed-default") == builds_before + 1
    assert metric("tokfeed_feed_batch_build_seconds_sum", algorithm="seed-default") > 0

