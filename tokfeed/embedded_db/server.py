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
def ensure_server(data_dir: str, pool_max_size: int = 12) -> tuple[str, int, str]:
    """Start the server for ``data_dir`` unless it runs already; return (socket dir, port, user).

    ``pool_max_size`` is the connection pool of each process using it (``max_connections``).
    """
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
    _configure(pgdata, address, server_settings(pool_max_size))
    return address


def shared_buffers_mb() -> int:
    """PostgreSQL's page cache for the embedded server: a quarter of the memory, at most 1 GiB.

    initdb's 128 MB holds less than the HNSW index of 100 000 videos (about 200 MB), and an index
    page read from the OS instead costs a system call: ANN searches ran about twice as slow.
    """
    memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(128, min(1024, memory_mb // 4))


#: Processes that may share one embedded server, each with its own pool: the web server (or a
#: few), a Celery worker, management commands, tests and the server they start.
PROCESSES_PER_SERVER = 8
#: Connections outside the pools: this module's own, psql, superuser_reserved_connections.
SPARE_CONNECTIONS = 10


def max_connections(pool_max_size: int) -> int:
    """The embedded server's ``max_connections``: every process's pool full at once still fits."""
    return PROCESSES_PER_SERVER * pool_max_size + SPARE_CONNECTIONS


def server_settings(pool_max_size: int) -> dict[str, str]:
    return {"shared_buffers": f"{shared_buffers_mb()}MB", "max_connections": str(max_connections(pool_max_size))}


def _configure(pgdata: Path, address: tuple[str, int, str], wanted: dict[str, str]) -> None:
    """Record our settings in the data directory (``ALTER SYSTEM``).

    Both are read when the server starts, so a new value applies from the next start: the
    server stops when the last process using it exits, so that is the next command (``make
    run`` migrates, then imports). What ALTER SYSTEM recorded is read from its file, so a
    process that finds it in place opens no connection for it.
    """
    auto_conf = pgdata / "postgresql.auto.conf"
    text = auto_conf.read_text() if auto_conf.exists() else ""
    recorded = {name: values[-1] for name in wanted if (values := re.findall(rf"^{name} = '([^']*)'", text, re.M))}
    changed = {name: value for name, value in wanted.items() if recorded.get(name) != value}
    if not changed:
        return
    logger.info("embedded server: %s from its next start", ", ".join(f"{k} {v}" for k, v in changed.items()))
    with _admin_connection(*address) as conn:
        for name, value in changed.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")


@functools.cache
def ensure_database(address: tuple[str, int, str], name: str) -> None:
    """Create database ``name`` on the embedded server at ``address`` if it does not exist yet."""
    with _admin_connection(*address) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not found:
            logger.info("creating database %s on the embedded server", name)
            conn.execute(f'CREATE DATABASE "{name}"')


def _admin_connection(host: str, port: int, user: str):
    """A connection to the server's ``postgres`` database, for server-wide work."""
    import psycopg

    return psycopg.connect(dbname="postgres", host=host, port=port, user=user, autocommit=True)
