"""The embedded default: manage.py starts its own PostgreSQL + pgvector under TOKFEED_DATA_DIR."""
import os
import subprocess
import sys
import time

from tests.conftest import REPO

COUNT_ALGORITHMS = "from algorithms.models import Algorithm; print('algorithms', Algorithm.objects.count())"
VECTOR_VERSION = (
    "from django.db import connection; c = connection.cursor(); "
    "c.execute(\"SELECT extversion FROM pg_extension WHERE extname = 'vector'\"); print('vector', c.fetchone()[0])"
)


def manage(data_dir, *args, **popen):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["TOKFEED_DATA_DIR"] = str(data_dir)
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(process) -> str:
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return out


def test_data_persists_across_runs_and_two_processes_share_the_server(tmp_path):
    data_dir = tmp_path / "data"
    finish(manage(data_dir, "migrate", "--verbosity", "0"))
    assert (data_dir / "postgres" / "PG_VERSION").exists()

    # Two processes at once on the same data directory: both connect, neither breaks the other.
    first = manage(data_dir, "shell", "-c", COUNT_ALGORITHMS)
    second = manage(data_dir, "shell", "-c", VECTOR_VERSION)
    assert "algorithms 7" in finish(first)
    assert "vector 0.6" in finish(second)

    # A later run finds what the first one wrote.
    assert "algorithms 7" in finish(manage(data_dir, "shell", "-c", COUNT_ALGORITHMS))

    # The last process to leave stops the server: nothing is left running on that directory.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _postgres_running(data_dir):
        time.sleep(0.2)
    assert not _postgres_running(data_dir)


def _postgres_running(data_dir) -> bool:
    result = subprocess.run(["pgrep", "-f", f"postgres.*{data_dir}"], capture_output=True)
    return result.returncode == 0


SERVER_SETTINGS = (
    "from django.db import connection; c = connection.cursor(); "
    "c.execute(\"SELECT setting::bigint * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'\"); "
    "print('shared_buffers_mb', c.fetchone()[0]); "
    "c.execute('SHOW max_connections'); print('max_connections', c.fetchone()[0])"
)


def test_the_embedded_server_gets_its_page_cache_and_room_for_the_pools_from_its_next_start(tmp_path):
    from tokfeed.embedded_db.server import max_connections, shared_buffers_mb

    data_dir = tmp_path / "data"
    first = finish(manage(data_dir, "shell", "-c", SERVER_SETTINGS))  # initdb's defaults, ours recorded for later
    assert "shared_buffers_mb 128" in first
    later = finish(manage(data_dir, "shell", "-c", SERVER_SETTINGS))  # the server was stopped in between
    assert f"shared_buffers_mb {shared_buffers_mb()}" in later
    # Every process's pool full at once (the default pool of 12) fits, with room to spare.
    assert f"max_connections {max_connections(12)}" in later
    assert max_connections(12) >= 8 * 12
