"""Who may call what on the partner API: keys and their scopes (401 and 403 in the API's error
shape), keys issued from the admin and from ``create_api_key``, the move of the library's keys to
``PartnerKey``, every view declaring its scope, CORS for configured origins only, and JSON 404s
under ``/api/``. On the real catalog, with real keys (hashed as in production)."""
import importlib
import io
import logging
import re
import uuid
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView
from rest_framework_api_key.models import APIKey

from catalog.models import Video
from feed.api_auth import check_api_scopes
from feed.models import SCOPES, PartnerKey
from feed.services import create_key
from tests.conftest import partner_client

ORIGIN = "https://app.example.com"


@pytest.fixture
def video(catalog_db) -> int:
    return Video.objects.exclude(embedding=None).order_by("id").values_list("id", flat=True)[3]


def calls(video: int) -> dict[str, list]:
    """One call per endpoint family, by the scope it needs: (method, path, JSON body or None)."""
    return {
        "read": [("get", "/api/v1/videos/", None), ("get", f"/api/v1/videos/{video}/", None),
                 ("get", f"/api/v1/videos/{video}/similar/", None), ("get", "/api/v1/creators/", None),
                 ("post", "/api/v1/recommendations/", {"video_ids": [video], "limit": 3})],
        "sessions": [("post", "/api/v1/sessions/", {})],
    }


def call(client, method, url, body):
    return getattr(client, method)(url, body, format="json") if body is not None else getattr(client, method)(url)


def assert_error(response, status, code, *, mentions=()):
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error", "field", "code", "details"} and body["field"] is None
    assert body["code"] == code, body
    for word in mentions:
        assert word in body["error"], body


# --- scopes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("held", [("read",), ("sessions",), ("read", "sessions")])
def test_a_key_calls_the_endpoints_of_its_scopes_and_is_refused_the_others(video, held):
    client = partner_client("scoped", held)
    for scope, endpoints in calls(video).items():
        for method, url, body in endpoints:
            response = call(client, method, url, body)
            if scope in held:
                assert response.status_code in (200, 201), (url, response.json())
            else:
                assert_error(response, 403, "insufficient_scope", mentions=(f"'{scope}'", url))


def test_a_session_key_runs_a_whole_session_and_a_read_key_none_of_it(catalog_db):
    sessions, reader = partner_client("acme", ("sessions",)), partner_client("acme", ("read",))
    session = sessions.post("/api/v1/sessions/", {}, format="json").json()["id"]
    batch = sessions.post(f"/api/v1/sessions/{session}/batch/")
    assert batch.status_code == 200
    signal = {"video": batch.json()["items"][0]["id"], "event_id": str(uuid.uuid4()), "watched_ms": 16000}
    assert sessions.post(f"/api/v1/sessions/{session}/signals/", signal, format="json").status_code == 200
    # The same partner's key without the scope touches none of it (refused before the lookup).
    assert_error(reader.post(f"/api/v1/sessions/{session}/batch/"), 403, "insufficient_scope", mentions=("'sessions'",))
    signal["event_id"] = str(uuid.uuid4())
    assert_error(reader.post(f"/api/v1/sessions/{session}/signals/", signal, format="json"), 403, "insufficient_scope")


class IngestProbe(APIView):
    """An endpoint of the ingest scope (the catalog's ingestion views declare it so)."""

    api_scope = "ingest"

    def post(self, request):
        return Response({"ok": True})


class Unscoped(APIView):
    def get(self, request):
        return Response({"ok": True})


def test_the_ingest_scope_is_given_on_purpose(db):
    factory = APIRequestFactory()

    def post_with(key):
        return IngestProbe.as_view()(factory.post("/api/v1/probe/", {}, format="json",
                                                  HTTP_AUTHORIZATION=f"Api-Key {key}"))

    default_key = create_key("acme")[1]  # read and sessions
    refused = post_with(default_key)
    assert refused.status_code == 403 and refused.data["code"] == "insufficient_scope" and "'ingest'" in refused.data["error"]
    assert post_with(create_key("acme", ["ingest"])[1]).status_code == 200


def test_no_key_a_wrong_key_a_revoked_or_expired_key_are_401(catalog_db):
    url = "/api/v1/creators/"
    assert_error(APIClient().get(url), 401, "not_authenticated", mentions=("Api-Key",))
    assert APIClient().get(url)["WWW-Authenticate"] == "Api-Key"
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Api-Key abcdefgh.notthekey")
    assert_error(wrong.get(url), 401, "authentication_failed")
    revoked_row, revoked = create_key("gone", ["read"])
    expired_row, expired = create_key("late", ["read"])
    PartnerKey.objects.filter(pk=revoked_row.pk).update(revoked=True)
    PartnerKey.objects.filter(pk=expired_row.pk).update(expiry_date=timezone.now() - timedelta(minutes=1))
    for key in (revoked, expired):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
        assert_error(client.get(url), 401, "authentication_failed")


def key_reads(client, url, times: int) -> int:
    """How many of ``times`` GETs of ``url`` read a partner key from the database."""
    with CaptureQueriesContext(connection) as queries:
        for _ in range(times):
            assert client.get(url).status_code == 200
    return sum('"feed_partnerkey"' in q["sql"] for q in queries.captured_queries)


def test_a_key_is_read_once_for_a_stream_of_requests_and_a_revocation_applies_at_once(catalog_db):
    url = "/api/v1/creators/"
    row, key = create_key("steady", ["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert key_reads(client, url, 3) == 1
    row.revoked = True
    row.save()  # as the admin does
    assert_error(client.get(url), 401, "authentication_failed")


def test_a_scope_taken_away_applies_at_once(catalog_db):
    row, key = create_key("narrowed", ["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/creators/").status_code == 200
    row.scope_read = False
    row.save()
    assert_error(client.get("/api/v1/creators/"), 403, "insufficient_scope")


def test_without_the_cache_every_request_reads_its_key(catalog_db, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {create_key('uncached', ['read'])[1]}")
    assert key_reads(client, "/api/v1/creators/", 3) == 3


def test_every_api_view_declares_its_scope(db):
    assert check_api_scopes() == []
    patterns = [path("api/v1/unscoped/", Unscoped.as_view()), path("api/v1/plain/", lambda request: None),
                path("elsewhere/", Unscoped.as_view())]
    errors = check_api_scopes(patterns=patterns)
    assert [(e.id, e.msg.split(":")[0]) for e in errors] == [("feed.E001", "/api/v1/unscoped/"),
                                                             ("feed.E001", "/api/v1/plain/")]
    # Served anyway, it fails rather than let any key in.
    with pytest.raises(ImproperlyConfigured, match="api_scope"):
        Unscoped.as_view()(APIRequestFactory().get("/api/v1/unscoped/",
                                                   HTTP_AUTHORIZATION=f"Api-Key {create_key('acme')[1]}"))


def test_the_schema_names_each_operations_scope(catalog_db, client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    scopes = {(route, method): operation.get("x-api-scope")
              for route, operations in schema["paths"].items() for method, operation in operations.items()}
    assert scopes[("/api/v1/sessions/", "post")] == "sessions"
    assert scopes[("/api/v1/sessions/{session_id}/signals/", "post")] == "sessions"
    assert scopes[("/api/v1/recommendations/", "post")] == "read"
    assert scopes[("/api/v1/videos/{id}/similar/", "get")] == "read"
    assert all(scopes[key] in SCOPES for key in scopes if key[0].startswith("/api/v1/")), scopes
    similar = schema["paths"]["/api/v1/videos/{id}/similar/"]["get"]["description"]
    assert "`read` scope" in similar and "insufficient_scope" in similar
    assert "create_api_key" in schema["components"]["securitySchemes"]["ApiKey"]["description"]


# --- issuing keys -----------------------------------------------------------------------------

def test_the_command_creates_a_key_with_the_scopes_asked_for(catalog_db):
    out = io.StringIO()
    call_command("create_api_key", "acme", "--scopes", "ingest, read", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    row = PartnerKey.objects.get_from_key(key)
    assert (row.name, row.scopes) == ("acme", ("read", "ingest"))
    assert "read,ingest" in out.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.get("/api/v1/creators/").status_code == 200
    assert client.post("/api/v1/sessions/", {}, format="json").status_code == 403

    out = io.StringIO()
    call_command("create_api_key", "plain", stdout=out)
    assert PartnerKey.objects.get_from_key(out.getvalue().strip().splitlines()[-1]).scopes == ("read", "sessions")


@pytest.mark.parametrize("scopes, message", [("read,admin", "unknown scope 'admin': the scopes are read, sessions, ingest"),
                                             (" , ", "at least one scope")])
def test_the_command_refuses_an_unknown_scope_or_none(db, scopes, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", "acme", "--scopes", scopes, stdout=io.StringIO())
    assert not PartnerKey.objects.exists()


def test_keys_are_managed_in_one_admin_page_that_shows_a_new_key_once(admin_client, catalog_db):
    assert PartnerKey in admin.site._registry and APIKey not in admin.site._registry
    create_key("listed", ["read", "ingest"])
    changelist = admin_client.get(reverse("admin:feed_partnerkey_changelist"))
    assert changelist.status_code == 200
    page = changelist.content.decode()
    assert "listed" in page and "read, ingest" in page
    assert admin_client.get(reverse("admin:feed_partnerkey_add")).status_code == 200

    response = admin_client.post(reverse("admin:feed_partnerkey_add"), {
        "name": "from-admin", "scope_sessions": "on", "expiry_date_0": "", "expiry_date_1": ""}, follow=True)
    assert response.status_code == 200
    shown = " ".join(str(m) for m in get_messages(response.wsgi_request))
    key = re.search(r"The API key for from-admin is: (\S+)\. ", shown).group(1)
    row = PartnerKey.objects.get(name="from-admin")
    assert row.scopes == ("sessions",) and row.hashed_key != key and key not in row.id
    assert admin_client.get(reverse("admin:feed_partnerkey_change", args=[row.pk])).status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    assert client.post("/api/v1/sessions/", {}, format="json").status_code == 201
    assert client.get("/api/v1/creators/").status_code == 403


def test_the_librarys_keys_move_to_partner_keys_with_every_scope_and_keep_working(catalog_db):
    migration = importlib.import_module("feed.migrations.0008_copy_api_keys")
    from django.apps import apps

    live_row, live = APIKey.objects.create_key(name="deployed")
    revoked_row, revoked = APIKey.objects.create_key(name="deployed")
    expires = timezone.now() + timedelta(days=30)
    APIKey.objects.filter(pk=revoked_row.pk).update(revoked=True, expiry_date=expires)
    created = timezone.now() - timedelta(days=400)
    APIKey.objects.filter(pk=live_row.pk).update(created=created)

    migration.forwards(apps, None)
    assert not APIKey.objects.exists()
    moved = PartnerKey.objects.get(pk=live_row.pk)
    assert (moved.prefix, moved.hashed_key, moved.name, moved.created) == (
        live_row.prefix, live_row.hashed_key, "deployed", created)
    assert moved.scopes == tuple(SCOPES)
    assert PartnerKey.objects.get(pk=revoked_row.pk).revoked is True
    assert PartnerKey.objects.get(pk=revoked_row.pk).expiry_date == expires
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {live}")
    assert client.get("/api/v1/creators/").status_code == 200
    assert client.post("/api/v1/sessions/", {}, format="json").status_code == 201
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {revoked}")
    assert client.get("/api/v1/creators/").status_code == 401

    migration.backwards(apps, None)
    assert not PartnerKey.objects.exists()
    assert APIKey.objects.get(pk=live_row.pk).created == created and APIKey.objects.get_from_key(live)


# --- CORS -----------------------------------------------------------------------------------

@pytest.fixture
def cors(settings):
    settings.CORS_ALLOWED_ORIGINS = [ORIGIN]


def test_a_configured_origin_may_read_the_api(catalog_db, cors, api_client):
    response = api_client.get("/api/v1/creators/", HTTP_ORIGIN=ORIGIN)
    assert response.status_code == 200 and response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Retry-After" in response["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response
    # Refusals too, so the app can read why.
    refused = APIClient().get("/api/v1/creators/", HTTP_ORIGIN=ORIGIN)
    assert refused.status_code == 401 and refused["Access-Control-Allow-Origin"] == ORIGIN


def test_a_preflight_from_a_configured_origin_needs_no_key(catalog_db, cors):
    preflight = APIClient().options("/api/v1/recommendations/", HTTP_ORIGIN=ORIGIN,
                                    HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                                    HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type")
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert {"authorization", "content-type"} <= {h.strip() for h in preflight["Access-Control-Allow-Headers"].split(",")}
    assert "POST" in preflight["Access-Control-Allow-Methods"]


def test_an_unconfigured_origin_and_pages_outside_the_api_get_no_cors_headers(catalog_db, cors, api_client, client):
    other = "https://elsewhere.example.org"
    assert "Access-Control-Allow-Origin" not in api_client.get("/api/v1/creators/", HTTP_ORIGIN=other)
    preflight = APIClient().options("/api/v1/creators/", HTTP_ORIGIN=other, HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert "Access-Control-Allow-Origin" not in preflight
    assert "Access-Control-Allow-Origin" not in client.get("/", HTTP_ORIGIN=ORIGIN)


def test_no_origin_is_allowed_by_default(catalog_db, api_client):
    assert "Access-Control-Allow-Origin" not in api_client.get("/api/v1/creators/", HTTP_ORIGIN=ORIGIN)


def test_the_origins_setting_refuses_what_is_not_an_origin(monkeypatch):
    from tokfeed.settings import env_origins

    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", f" {ORIGIN}, http://localhost:3000 ")
    assert env_origins("CORS_ALLOWED_ORIGINS") == [ORIGIN, "http://localhost:3000"]
    for bad in ("app.example.com", "https://app.example.com/path", "ftp://app.example.com"):
        monkeypatch.setenv("CORS_ALLOWED_ORIGINS", bad)
        with pytest.raises(RuntimeError, match="not an origin"):
            env_origins("CORS_ALLOWED_ORIGINS")


# --- 404 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/api/v1/nope/", "/api/whatever", "/api/v1/", "/api", "/api/v1/videos/1/nope/"])
def test_an_unknown_api_path_is_a_json_404(db, api_client, url):
    assert_error(api_client.get(url), 404, "not_found", mentions=(url,))
    assert_error(APIClient().post(url, {}, format="json"), 404, "not_found")


@pytest.mark.parametrize("url", ["/api/v1/nope/", "/api/whatever"])
def test_an_unknown_api_path_is_a_json_404_with_debug_on_too(db, settings, url):
    settings.DEBUG = True  # Django's technical 404 page used to win
    assert_error(APIClient(enforce_csrf_checks=True).post(url, {}, format="json"), 404, "not_found", mentions=(url,))
    assert_error(APIClient().get(url), 404, "not_found", mentions=(url,))


def test_other_unknown_paths_keep_djangos_page_and_a_missing_slash_still_redirects(db, client, api_client):
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    redirect = api_client.get("/api/v1/creators")
    assert redirect.status_code == 301 and redirect["Location"] == "/api/v1/creators/"


def test_an_unexpected_error_in_the_api_is_a_json_500_and_its_traceback_is_logged(db, api_client, monkeypatch,
                                                                                   caplog):
    from catalog import selectors

    def broken(video_id, limit):
        raise RuntimeError("the similar statement broke")

    monkeypatch.setattr(selectors, "similar_videos", broken)
    api_client.raise_request_exception = False
    video = Video.objects.filter(embedding__isnull=False).values_list("pk", flat=True).first() or 1
    request_log = logging.getLogger("django.request")  # it prints itself, not through the root
    request_log.addHandler(caplog.handler)
    try:
        response = api_client.get(f"/api/v1/videos/{video}/similar/")
    finally:
        request_log.removeHandler(caplog.handler)
    assert_error(response, 500, "internal_error")
    assert "broke" not in response.content.decode()  # the partner gets no internals
    logged = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    assert logged and "the similar statement broke" in str(logged[0].exc_info[1])
