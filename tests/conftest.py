"""Shared fixtures. The database is real PostgreSQL + pgvector (the embedded server unless
DATABASE_URL says otherwise); the model is the real all-MiniLM-L6-v2.

The real catalog (1000 trending videos) is imported and embedded once per test session into the
test database, before any test runs; tests that use ``db`` see it and roll back their changes.
Tests that need ``transactional_db`` (real workers, threads) run after those (pytest-django
orders them last), because flushing the tables at their end removes the shared catalog; they
bring their own data.
"""
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

REPO = Path(__file__).resolve().parent.parent
TRENDING = REPO.parent / "shared" / "data" / "tiktok-trending-2020.json"
DEMO = REPO / "catalog" / "demo" / "demo_catalog.json"


def pytest_configure(config):
    """No connection pool in the test process itself.

    Its tests open connections from many threads (workers, consumers) and check that none is
    left when they end, which a pool's idle connections would defeat. The pool is exercised
    where it serves: in the servers the tests start (``tests/integration/test_connections.py``).
    """
    from django.conf import settings

    settings.DATABASES["default"]["OPTIONS"].pop("pool", None)


@pytest.fixture(autouse=True)
def forget_remembered_values():
    """Each test starts with nothing remembered (``tokfeed.ttl_cache``): a rolled-back test's rows
    must not be served to the next one from a process cache."""
    from tokfeed.ttl_cache import forget_all

    forget_all()


@pytest.fixture(scope="session")
def trending_path() -> Path:
    if not TRENDING.exists():
        pytest.fail(f"the real catalog is missing: {TRENDING} (tests need ../shared beside the project)")
    return TRENDING


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, trending_path):
    """Create the test database, then import and embed the real catalog into it once."""
    with django_db_blocker.unblock():
        call_command("import_trending", str(trending_path), verbosity=0)
        call_command("embed", verbosity=0)


@pytest.fixture
def catalog_db(db):
    """The shared, embedded real catalog (an alias of ``db`` that says what it relies on)."""
    return db


def partner_key(name: str = "tests", scopes: tuple[str, ...] | None = None) -> str:
    """A real partner API key for partner ``name``, holding ``scopes`` (default: every scope)."""
    from feed.models import SCOPES
    from feed.services import create_key

    return create_key(name, tuple(SCOPES) if scopes is None else scopes)[1]


def partner_client(name: str = "tests", scopes: tuple[str, ...] | None = None):
    """A DRF client carrying ``partner_key(name, scopes)``."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {partner_key(name, scopes)}")
    return client


@pytest.fixture
def api_client(db):
    """A DRF client carrying a real partner API key that holds every scope."""
    return partner_client()


@pytest.fixture
def small_catalog(transactional_db, trending_path):
    """For transactional tests: the first 80 real videos, embedded, and the shipped algorithms.

    Transactional tests flush every table when they end (data migrations included), so they
    cannot rely on the shared catalog and build this small one themselves.
    """
    from algorithms.blueprints import LIBRARY_DIR, SEED_BLUEPRINT
    from algorithms.models import Algorithm
    from algorithms.services import save_blueprint
    from catalog.importers import import_records, read_records
    from catalog.models import Creator, Video

    Video.objects.all().delete()
    Creator.objects.all().delete()
    EVIDENCE_BLUEPRINT = LIBRARY_DIR / "evidence_default.json"
    records, _ = read_records(trending_path)
    import_records(records[:80])
    call_command("embed", verbosity=0)
    # As the migrations ship them: seed-default, and evidence as the default.
    if not Algorithm.objects.filter(slug="seed-default").exists():
        save_blueprint(SEED_BLUEPRINT, slug="seed-default")
    if not Algorithm.objects.filter(slug="evidence").exists():
        save_blueprint(EVIDENCE_BLUEPRINT.read_text(), slug="evidence", make_default=True)


def database_url() -> str:
    """The test database as a DATABASE_URL, for the processes a test starts."""
    from tokfeed.embedded_db.server import database_url as url_of

    s = connection.settings_dict
    return url_of((s["HOST"], s["PORT"], s["USER"]), s["NAME"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen, what: str, log_path: Path | None = None,
                         timeout: float = 60) -> None:
    """Wait (a minute by default) until ``process`` accepts connections on ``port``; fail if it dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} did not start:\n{log_path.read_text() if log_path else ''}")
            time.sleep(0.2)


@contextlib.contextmanager
def serve(log_dir: Path, **env_overrides: str):
    """daphne serving tokfeed on the test database in a subprocess; yields its URL.

    The test must be transactional (the server sees only committed data). ``env_overrides``
    set the server's environment (e.g. a REDIS_URL, a pool size); by default it has the
    in-memory channel layer.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(DATABASE_URL=database_url(), DEBUG="1", **env_overrides)
    log_path = log_dir / f"daphne-{port}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "tokfeed.asgi:application"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_listening(port, server, "daphne", log_path)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()  # before the test database is flushed: it holds connections to it
        server.wait(timeout=30)
        print(log_path.read_text()[-3000:])
        wait_for_other_connections_to_close("the server")


def all_at_once(work, threads: int) -> tuple[list, list[Exception]]:
    """Run ``work(n)`` in ``threads`` threads (``n``: 0, 1, ...) released together (a barrier):
    ``(what each returned, the exceptions raised)``, in the order they finished."""
    start = threading.Barrier(threads)
    results, errors = [], []

    def run(n):
        start.wait()
        try:
            results.append(work(n))
        except Exception as exc:  # noqa: BLE001 - the caller asserts on them
            errors.append(exc)

    running = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    return results, errors


def other_connections() -> list[tuple]:
    """Clients' connections to the test database other than this one: (pid, application, state,
    query). PostgreSQL's own workers (autovacuum after the catalog's bulk load) are not clients."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid, application_name, state, query FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                       "AND backend_type = 'client backend'")
        return cursor.fetchall()


def wait_for_other_connections_to_close(holder: str, timeout: float = 10) -> None:
    """A closed connection's backend ends a moment after its client lets go; one that stays
    open for ``timeout`` seconds was leaked by ``holder``."""
    deadline = time.monotonic() + timeout
    while (others := other_connections()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not others, f"connections to the test database outlived {holder}: {others}"
