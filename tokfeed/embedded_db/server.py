"""Start (or join) the embedded PostgreSQL server kept in a data directory.

Several processes (the web server, a Celery worker, a management command) may share one data
directory: ``pgserver`` serialises start-up with an inter-process lock and keeps a list of the
processes using the server, stopping it when the last one exits.
"""
from __future__ import annotations

import functools
import logging
import warnings
from pathlib import Path
from urllib.parse import parse_qs, urlparse

logger = logging.getLogger(__name__)

# Handles must live as long as the process: pgserver stops the server when the last process
# holding one exits.
_servers: dict[str, object] = {}


@functools.cache
def ensure_server(data_dir: str) -> tuple[str, int, str]:
    """Start the server for ``data_dir`` unless it runs already; return (socket dir, port, user)."""
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: that is fine.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = Path(data_dir).resolve() / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    _servers[data_dir] = server
    uri = urlparse(server.get_uri())
    return parse_qs(uri.query)["host"][0], uri.port or 5432, uri.username or "postgres"


@functools.cache
def ensure_database(data_dir: str, name: str) -> None:
    """Create database ``name`` on the embedded server if it does not exist yet."""
    import psycopg

    host, port, user = ensure_server(data_dir)
    with psycopg.connect(dbname="postgres", host=host, port=port, user=user, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            logger.info("creating database %s on the embedded server", name)
            conn.execute(f'CREATE DATABASE "{name}"')
