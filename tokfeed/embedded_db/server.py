"""Start (or join) the embedded PostgreSQL server kept in a data directory.

Several processes (the web server, a Celery worker, a management command) may share one data
directory: ``pgserver`` serialises start-up with an inter-process lock and keeps a list of the
processes using the server, stopping it when the last one exits.
"""
from __future__ import annotations

import functools
import logging
import os
import re
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
    address = parse_qs(uri.query)["host"][0], uri.port or 5432, uri.username or "postgres"
    _configure(pgdata, address)
    return address


def shared_buffers_mb() -> int:
    """PostgreSQL's page cache for the embedded server: a quarter of the memory, at most 1 GiB.

    initdb's 128 MB holds less than the HNSW index of 100 000 videos (about 200 MB), and an index
    page read from the OS instead costs a system call: ANN searches ran about twice as slow.
    """
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(128, min(1024, memory_mb // 4))


def _configure(pgdata: Path, address: tuple[str, int, str]) -> None:
    """Record our settings in the data directory (``ALTER SYSTEM``).

    ``shared_buffers`` is read when the server starts, so a new value applies from the next
    start: the server stops when the last process using it exits, so that is the next command
    (``make run`` migrates, then imports). What ALTER SYSTEM recorded is read from its file, so
    a process that finds it in place opens no connection for it.
    """
    wanted = f"{shared_buffers_mb()}MB"
    auto_conf = pgdata / "postgresql.auto.conf"
    recorded = re.findall(r"^shared_buffers = '([^']*)'", auto_conf.read_text() if auto_conf.exists() else "", re.M)
    if recorded and recorded[-1] == wanted:
        return
    logger.info("embedded server: shared_buffers %s from its next start", wanted)
    with _admin_connection(*address) as conn:
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{wanted}'")


@functools.cache
def ensure_database(data_dir: str, name: str) -> None:
    """Create database ``name`` on the embedded server if it does not exist yet."""
    with _admin_connection(*ensure_server(data_dir)) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            logger.info("creating database %s on the embedded server", name)
            conn.execute(f'CREATE DATABASE "{name}"')


def _admin_connection(host: str, port: int, user: str):
    """A connection to the server's ``postgres`` database, for server-wide work."""
    import psycopg

    return psycopg.connect(dbname="postgres", host=host, port=port, user=user, autocommit=True)
