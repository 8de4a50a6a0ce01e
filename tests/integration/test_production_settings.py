"""Production settings: DEBUG is off unless asked for, `check --deploy` is clean with the settings
the README documents, every page carries a Content-Security-Policy and loads nothing from a CDN."""
import os
import re
import subprocess
import sys

from tests.conftest import REPO

PRODUCTION = {
    "SECRET_KEY": "k" * 20 + "-production-test-key-" + "x" * 30,
    "ALLOWED_HOSTS": "feed.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://feed.example.com",
    "SECURE_SSL_REDIRECT": "1",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "SECURE_COOKIES": "1",
    "BEHIND_TLS_PROXY": "1",
}


def manage(tmp_path, *args, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL", *PRODUCTION)}
    clean.update(TOKFEED_DATA_DIR=str(tmp_path / "data"), **env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=clean, capture_output=True,
                          text=True, timeout=300)


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_without_them(tmp_path):
    result = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=PRODUCTION["SECRET_KEY"])
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr, result.stderr


def test_debug_is_off_unless_asked_for_and_a_deployment_must_set_its_key(tmp_path):
    show = "from django.conf import settings; print('debug', settings.DEBUG)"
    assert "debug False" in manage(tmp_path, "shell", "-c", show).stdout
    assert "debug True" in manage(tmp_path, "shell", "-c", show, DEBUG="1").stdout
    # The embedded default makes its own key once and keeps it.
    key = "from django.conf import settings; print('key', settings.SECRET_KEY)"
    first, again = manage(tmp_path, "shell", "-c", key).stdout, manage(tmp_path, "shell", "-c", key).stdout
    assert first == again and len(first.split()[-1]) >= 50
    # With DATABASE_URL (replicas), the key must be given.
    refused = manage(tmp_path, "check", DATABASE_URL="postgres://nobody@127.0.0.1:1/none")
    assert refused.returncode != 0 and "SECRET_KEY must be set" in refused.stderr


def test_pages_carry_a_csp_and_load_nothing_from_elsewhere(catalog_db, client):
    for url in ("/", "/api/docs/", "/admin/login/"):
        response = client.get(url)
        assert response.status_code == 200, url
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
        html = response.content.decode()
        # (Cover images and media may be remote, as the policy allows; code and styles may not.)
        assert not re.search(r"""<(script|link)[^>]+(src|href)=["']https?://""", html), url
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), f"{url} has an inline script"
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


LOG_LINES = (
    "import logging; logging.getLogger('feed').warning('view applied', extra={'session': 's-1'}); "
    "logging.getLogger('django.request').warning('Not Found: /nowhere')"
)


def test_logs_are_one_json_object_a_line_with_log_format_json(tmp_path):
    import json

    result = manage(tmp_path, "shell", "-c", LOG_LINES, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(r["level"], r["logger"], r["message"]) for r in records] == [
        ("WARNING", "feed", "view applied"), ("WARNING", "django.request", "Not Found: /nowhere")]
    assert records[0]["session"] == "s-1" and records[0]["time"] and records[0]["pid"] > 0
    # Plain lines by default; a format we do not know is refused at start.
    assert "WARNING feed: view applied" in manage(tmp_path, "shell", "-c", LOG_LINES).stderr
    refused = manage(tmp_path, "check", LOG_FORMAT="xml")
    assert refused.returncode != 0 and "LOG_FORMAT must be plain or json" in refused.stderr
