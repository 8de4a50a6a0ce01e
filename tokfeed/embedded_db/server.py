"""Start (or join) the embedded PostgreSQL server kept in a data directory.

Several processes (the web server, a Celery worker, a management command) may share one data
directory: ``pgserver`` serialises start-up with an inter-process lock and keeps a list of the
processes using the server, stopping it when the last one exits.

The production server (``tokfeed.serve``) starts it once, before its workers, sized for them
(``processes``) and restarted at once if that changed its settings; the workers then reach it
as any PostgreSQL, by ``database_url``.
"""
from __future__ import annotations

import functools
import logging
import os
import re
import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

logger = logging.getLogger(__name__)

# Handles must live as long as the process: pgserver stops the server when the last process
# holding one exits.
_servers: dict[str, object] = {}


@functools.cache
def ensure_server(data_dir: str, pool_max_size: int = 12, processes: int | None = None, *,
                  restart_to_apply: bool = False) -> tuple[str, int, str]:
    """Start the server for ``data_dir`` unless it runs already; return (socket dir, port, user).

    ``pool_max_size`` is the connection pool of each process using it, ``processes`` how many
    may use it at once (``max_connections``; ``PROCESSES_PER_SERVER`` at least). Settings that
    changed apply from the server's next start; with ``restart_to_apply`` from now, by a restart,
    unless other processes are using the server (then the restart would break them).
    """
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp: that is fine.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata = Path(data_dir).resolve() / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    address = _address(server)
    changed = _configure(pgdata, address, server_settings(pool_max_size, processes))
    if changed and restart_to_apply:
        others = [pid for pid in server.global_process_id_list.get() if pid != os.getpid() and _alive(pid)]
        if others:
            logger.warning("embedded server: not restarted to apply its settings, processes %s use it", others)
        else:
            logger.info("embedded server: restarting to apply its settings")
            server.cleanup()  # the last handle: this stops the server
            server = pgserver.get_server(pgdata, cleanup_mode="stop")
            address = _address(server)
    _servers[data_dir] = server
    return address


def _address(server) -> tuple[str, int, str]:
    uri = urlparse(server.get_uri())
    return parse_qs(uri.query)["host"][0], uri.port or 5432, uri.username or "postgres"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def database_url(address: tuple[str, int, str], name: str) -> str:
    """A ``DATABASE_URL`` for database ``name`` on the embedded server at ``address`` (its socket)."""
    host, port, user = address
    return f"postgres://{user}@{quote(str(host), safe='')}:{port}/{name}"


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


def max_connections(pool_max_size: int, processes: int | None = None) -> int:
    """The embedded server's ``max_connections``: every process's pool full at once still fits."""
    return max(PROCESSES_PER_SERVER, processes or 0) * pool_max_size + SPARE_CONNECTIONS


def server_settings(pool_max_size: int, processes: int | None = None) -> dict[str, str]:
    return {"shared_buffers": f"{shared_buffers_mb()}MB",
            "max_connections": str(max_connections(pool_max_size, processes))}


def _configure(pgdata: Path, address: tuple[str, int, str], wanted: dict[str, str]) -> bool:
    """Record our settings in the data directory (``ALTER SYSTEM``).

    Both are read when the server starts, so a new value applies from the next start: the
    server stops when the last process using it exits, so that is the next command (``make
    run`` migrates, then imports). What ALTER SYSTEM recorded is read from its file, so a
    process that finds it in place opens no connection for it. Returns whether anything changed.
    """
    auto_conf = pgdata / "postgresql.auto.conf"
    text = auto_conf.read_text() if auto_conf.exists() else ""
    recorded = {name: values[-1] for name in wanted if (values := re.findall(rf"^{name} = '([^']*)'", text, re.M))}
    # max_connections only grows: a command run beside the production server (sized for its
    # workers) must not record less room for the server's next start.
    changed = {name: value for name, value in wanted.items() if recorded.get(name) != value
               and not (name == "max_connections" and int(recorded.get(name) or 0) > int(value))}
    if not changed:
        return False
    logger.info("embedded server: %s from its next start", ", ".join(f"{k} {v}" for k, v in changed.items()))
    with _admin_connection(*address) as conn:
        for name, value in changed.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    return True


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
