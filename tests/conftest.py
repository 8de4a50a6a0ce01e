"""Shared fixtures. The database is real PostgreSQL + pgvector (the embedded server unless
DATABASE_URL says otherwise); the model is the real all-MiniLM-L6-v2.

The real catalog (1000 trending videos) is imported and embedded once per test session into the
test database, before any test runs; tests that use ``db`` see it and roll back their changes.
Tests that need ``transactional_db`` (real workers, threads) run after those (pytest-django
orders them last), because flushing the tables at their end removes the shared catalog; they
bring their own data.
"""
from pathlib import Path

import pytest
from django.core.management import call_command

REPO = Path(__file__).resolve().parent.parent
TRENDING = REPO.parent / "shared" / "data" / "tiktok-trending-2020.json"
DEMO = REPO / "catalog" / "demo" / "demo_catalog.json"


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


@pytest.fixture
def api_client(db):
    """A DRF client carrying a real partner API key."""
    from rest_framework.test import APIClient
    from rest_framework_api_key.models import APIKey

    _, key = APIKey.objects.create_key(name="tests")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def small_catalog(transactional_db, trending_path):
    """For transactional tests: the first 80 real videos, embedded, and the shipped algorithms.

    Transactional tests flush every table when they end (data migrations included), so they
    cannot rely on the shared catalog and build this small one themselves.
    """
    from algorithms.blueprints import SEED_BLUEPRINT
    from algorithms.models import Algorithm
    from algorithms.services import save_blueprint
    from catalog.importers import import_records, read_records
    from catalog.models import Creator, Video

    Video.objects.all().delete()
    Creator.objects.all().delete()
    records, _ = read_records(trending_path)
    import_records(records[:80])
    call_command("embed", verbosity=0)
    if not Algorithm.objects.filter(slug="seed-default").exists():
        save_blueprint(SEED_BLUEPRINT, slug="seed-default", make_default=True)
