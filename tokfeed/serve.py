"""The production server: ``python -m tokfeed.serve`` (``make serve``), in the foreground.

One command starts, on one machine, in this order:

1. the database: with no ``DATABASE_URL``, the embedded PostgreSQL, started here once, before
   any worker, sized for all of them (restarted at once if that changed its settings), and kept
   running as long as this command. The other processes reach it by a ``DATABASE_URL`` (its
   socket) as they would any PostgreSQL: none of them starts, joins or stops it, so they never
   race to. With ``DATABASE_URL`` set, that database is used as it is;
2. the preparation, one management command after another: ``migrate`` (unless
   ``--skip-migrate``: a replica whose release step migrates), then with ``--catalog``
   ``import_trending`` and ``embed`` (in-process: no Celery worker is up yet), ``collectstatic``;
3. the web: N ASGI worker processes behind one port (uvicorn ``--workers``), each serving
   ``tokfeed.asgi:application``, websockets included. N is ``--workers``, else
   ``WEB_CONCURRENCY``, else the cores this process may run on. They share the Redis channel
   layer (``REDIS_URL``, default ``redis://127.0.0.1:6379/0``), so an event one worker publishes
   reaches the sockets the others hold;
4. a Celery worker for embedding and the other jobs (``CELERY_BROKER_URL``, default
   ``REDIS_URL``), with ``--celery-concurrency`` processes. No job is periodic: nothing needs a
   scheduler (``celery beat``).

Every process it starts gets ``PROMETHEUS_MULTIPROC_DIR``, a folder emptied at each start
(``TOKFEED_DATA_DIR/prometheus`` unless set), so ``/metrics`` adds up all the workers.
Client addresses: uvicorn is told not to read ``X-Forwarded-*``; the application does, as far as
``NUM_PROXIES`` and ``BEHIND_TLS_PROXY`` say (one rule for the rate limits and ``/metrics``).

SIGINT or SIGTERM stops the web and the Celery worker (each finishes what it is doing, within
``GRACE_S``), then the embedded database. If one of them exits by itself the other is stopped
too and the command fails: whatever supervises it (systemd, a container runtime) restarts it.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import logging
import logging.config
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokfeed.settings")

logger = logging.getLogger("tokfeed.serve")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: Seconds the web and the Celery worker get to finish what they are doing when stopped.
GRACE_S = 30
#: Processes that may use the embedded database besides the web and Celery's: Celery's main
#: process, and a management command or two run by hand beside the server.
OTHER_PROCESSES = 3


def default_workers() -> int:
    if concurrency := os.environ.get("WEB_CONCURRENCY", "").strip():
        return int(concurrency)
    return len(os.sched_getaffinity(0))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tokfeed.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=None,
                        help="ASGI worker processes (default: WEB_CONCURRENCY, else the number of cores)")
    parser.add_argument("--celery-concurrency", type=int, default=2,
                        help="processes of the Celery worker (0: start no Celery worker)")
    parser.add_argument("--catalog", type=Path, default=None,
                        help="import this catalog and embed what changed before serving")
    parser.add_argument("--skip-migrate", action="store_true",
                        help="do not migrate the database (another replica or a release step does)")
    args = parser.parse_args(argv)
    args.workers = args.workers if args.workers is not None else default_workers()
    if args.workers < 1 or args.celery_concurrency < 0:
        parser.error("--workers must be at least 1 and --celery-concurrency at least 0")
    return args


def check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        sys.exit(f"Redis does not answer at {url} ({exc}): start it (scripts/ensure-redis.sh) or set REDIS_URL.")


def start_embedded_database(settings, processes: int) -> str:
    """Start the embedded server for ``processes`` processes (held by this one); its DATABASE_URL."""
    from tokfeed.embedded_db.server import database_url, ensure_database, ensure_server

    database = settings.DATABASES["default"]
    address = ensure_server(database["OPTIONS"]["data_dir"], settings.DATABASE_POOL["max_size"], processes,
                            restart_to_apply=True)
    ensure_database(address, database["NAME"])
    return database_url(address, database["NAME"])


def fresh_folder(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _die_with_this_process() -> None:
    """In a child, before it runs: SIGTERM it when this process dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_step(args: list[str], env: dict) -> None:
    logger.info("preparing: manage.py %s", " ".join(args))
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env)
    if result.returncode != 0:
        sys.exit(f"manage.py {' '.join(args)} failed (exit {result.returncode}): not serving.")


def start(name: str, command: list[str], env: dict) -> subprocess.Popen:
    # A session of its own: a Ctrl-C in the terminal reaches this process only, which stops the
    # children once, in order, rather than every process at once.
    process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True,
                               preexec_fn=_die_with_this_process)
    logger.info("started %s (pid %d): %s", name, process.pid, " ".join(command[1:]))
    return process


def wait_until_listening(host: str, port: int, process: subprocess.Popen, timeout: float = 120) -> bool:
    address = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


class Stop(Exception):
    """SIGINT or SIGTERM arrived."""


def _raise_stop(signum, frame):
    raise Stop(signal.Signals(signum).name)


def stop(children: dict[str, subprocess.Popen]) -> None:
    for name, process in children.items():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + GRACE_S
    for name, process in children.items():
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %d s: killed", name, GRACE_S)
        # Whatever it left behind (a worker, a pool process) goes with it.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)

    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    broker_url = os.environ.get("CELERY_BROKER_URL") or redis_url
    check_redis(redis_url)
    env = dict(os.environ, REDIS_URL=redis_url, CELERY_BROKER_URL=broker_url)
    run_dir = fresh_folder(Path(settings.DATA_DIR) / "serve")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_folder(
        Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(settings.DATA_DIR) / "prometheus")))

    # Stop cleanly from here on: the database may be starting.
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    children: dict[str, subprocess.Popen] = {}
    try:
        if settings.DATABASES["default"]["ENGINE"] == "tokfeed.embedded_db":
            processes = args.workers + args.celery_concurrency + OTHER_PROCESSES
            env.update(DATABASE_URL=start_embedded_database(settings, processes),
                       # With DATABASE_URL a process must be given the key: this one's, kept in TOKFEED_DATA_DIR.
                       SECRET_KEY=settings.SECRET_KEY)

        # Eager tasks for the preparation (no worker yet); its metrics are nobody's.
        prepare = {k: v for k, v in env.items() if k not in ("CELERY_BROKER_URL", "PROMETHEUS_MULTIPROC_DIR")}
        if not args.skip_migrate:
            run_step(["migrate", "--noinput"], prepare)
        if args.catalog:
            run_step(["import_trending", str(args.catalog)], prepare)
            run_step(["embed"], prepare)
        run_step(["collectstatic", "--noinput", "--verbosity", "0"], prepare)

        web = [sys.executable, "-m", "uvicorn", "tokfeed.asgi:application", "--host", args.host,
               "--port", str(args.port), "--workers", str(args.workers),
               # Django's ASGI handler has no lifespan; client addresses are the application's to read.
               "--lifespan", "off", "--no-proxy-headers", "--no-server-header",
               "--timeout-graceful-shutdown", str(GRACE_S - 5)]
        if settings.LOG_FORMAT == "json":
            log_config = run_dir / "uvicorn-logging.json"
            log_config.write_text(json.dumps(settings.LOGGING))
            web += ["--log-config", str(log_config)]
        children["web"] = start("web", web, env)
        if args.celery_concurrency:
            children["celery"] = start("celery", [
                sys.executable, "-m", "celery", "-A", "tokfeed", "worker", "--loglevel", "INFO",
                "--concurrency", str(args.celery_concurrency), "--without-gossip", "--without-mingle",
            ], env)
        if not wait_until_listening(args.host, args.port, children["web"]):
            logger.error("the web did not start listening on %s:%d", args.host, args.port)
            return 1
        logger.info("tokfeed is serving on http://%s:%d/ (%d ASGI workers%s)", args.host, args.port, args.workers,
                    f", a Celery worker of {args.celery_concurrency}" if args.celery_concurrency else "")
        while True:
            for name, process in children.items():
                if (code := process.poll()) is not None:
                    logger.error("%s exited (%s): stopping the rest", name, code)
                    return 1
            time.sleep(0.5)
    except Stop as reason:
        logger.info("%s: stopping", reason)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopping now: a second Ctrl-C must not cut it short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(children)
        # The embedded database (if this process started it) stops when this process exits.


if __name__ == "__main__":
    sys.exit(main())
