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
