"""Rate limits: per key on the API, per client on new anonymous feeds and on admin login; each
answered 429 with Retry-After. Rates are lowered here; the defaults are in settings."""
import logging

import pytest
from django.core.cache import caches
from rest_framework.settings import api_settings

from feed.models import FeedSession
from tests.conftest import partner_client
from tokfeed.rate_limits import WindowCountThrottle


@pytest.fixture
def rates(monkeypatch):
    """Set rates for the test; counts start at zero, and the clock stands still in the middle of a
    window: counts are kept per fixed window, and a test whose requests straddled a window's edge
    saw its count start again (four admin logins, each a password hash, fail so about one run in
    sixty)."""
    caches["rate_limits"].clear()
    monkeypatch.setattr(WindowCountThrottle, "timer", lambda self: 1_800_000_030.0)  # 30 s into a minute
    yield lambda **scopes: [monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, k, v) for k, v in scopes.items()]
    caches["rate_limits"].clear()


def test_api_requests_are_limited_per_key(catalog_db, rates):
    rates(partner="3/min")
    first, second = partner_client("limits"), partner_client("limits")
    assert [first.get("/api/v1/creators/").status_code for _ in range(3)] == [200, 200, 200]
    limited = first.get("/api/v1/creators/")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert limited.json()["code"] == "throttled"
    assert second.get("/api/v1/creators/").status_code == 200  # another key has its own budget


def test_new_anonymous_feeds_are_limited_per_client_and_returning_viewers_are_not(catalog_db, client, rates):
    rates(feed_session="2/min")
    assert client.get("/").status_code == 200  # keeps its cookie: one session
    for _ in range(3):
        assert client.get("/").status_code == 200
    cookieless = [client.__class__().get("/") for _ in range(2)]
    assert [r.status_code for r in cookieless] == [200, 429]
    assert int(cookieless[-1]["Retry-After"]) > 0 and b"try again" in cookieless[-1].content
    assert FeedSession.objects.filter(partner=None).count() == 2
    # A client's address is not what it says in X-Forwarded-For (no trusted proxy by default).
    assert client.__class__().get("/", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429


def test_admin_login_attempts_are_limited_per_client(db, client, rates):
    rates(admin_login="3/min")
    attempts = [client.post("/admin/login/", {"username": "admin", "password": f"guess{i}"}) for i in range(4)]
    assert [a.status_code for a in attempts] == [200, 200, 200, 429]
    assert int(attempts[-1]["Retry-After"]) > 0
    assert client.get("/admin/login/").status_code == 200  # the form still shows


def test_probes_and_metrics_are_never_limited(db, client, rates):
    rates(partner="1/min", feed_session="1/min", admin_login="1/min")
    for url in ("/healthz", "/readyz", "/metrics"):
        assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200], url


def test_with_the_counts_unreachable_requests_go_through_and_it_is_logged_once(catalog_db, rates, settings, caplog):
    # Limits guard the service; they must not take it down with Redis.
    settings.CACHES = {**settings.CACHES, "rate_limits": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    rates(partner="1/min")
    client = partner_client("no-redis")
    ours = logging.getLogger("tokfeed")  # (our loggers do not propagate to pytest's)
    ours.addHandler(caplog.handler)
    try:
        assert [client.get("/api/v1/creators/").status_code for _ in range(3)] == [200, 200, 200]
    finally:
        ours.removeHandler(caplog.handler)
    assert [r.getMessage()[:33] for r in caplog.records if r.name == "tokfeed.rate_limits"] == [
        "rate limits not applied: their co"]


def test_a_key_is_counted_once_per_request_in_the_shared_counts(catalog_db, rates):
    # One increment per request in the window's count (DRF's own throttle rewrote the list of
    # every request's time on each).
    rates(partner="5/min")
    client = partner_client("counted")
    for _ in range(3):
        client.get("/api/v1/creators/")
    counts = caches["rate_limits"]
    windows = [k for k in counts._cache if "throttle_partner" in k]  # LocMem's store, in tests
    assert len(windows) == 1 and counts.get(windows[0].split(":", 2)[2]) == 3
