"""Prometheus metrics: the ASGI layer's own, and the ``/metrics`` page that exposes them all.

What is measured:
- requests by view, method and status, and their latency: django-prometheus's middleware
  (``django_http_*``; the API's endpoints are its views, e.g. ``view="session-batch"``);
- websocket connections open, by route: ``ObserveConnections`` around the ASGI application;
- each app's own, where its events are published after commit (the feed's: ``feed.metrics``).
Nothing is counted inside domain logic.

Several processes: when ``PROMETHEUS_MULTIPROC_DIR`` names a folder (the serve command makes a
fresh one for all its processes), each process writes its values to files there and ``/metrics``
adds them up over the processes, whichever worker is asked (prometheus_client's multiprocess
mode). prometheus_client reads the variable when it is imported: it must be set before the
process starts, and the folder emptied before the first process does.

``/metrics`` answers only clients in ``METRICS_ALLOWED_NETWORKS`` (403 otherwise), the client's
address found as the rate limits find it (``tokfeed.rate_limits.client_address``). It is no API
endpoint: no key, no rate limit.
"""
from __future__ import annotations

import functools
import glob
import ipaddress
import os
import re

from django.conf import settings
from django.http import HttpResponseForbidden
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import Gauge, multiprocess

from .rate_limits import client_address

WEBSOCKETS_OPEN = Gauge(
    "tokfeed_websockets_open", "Websocket connections open, by route.", ["path"],
    # Summed over the live processes: a worker that died takes its connections with it.
    multiprocess_mode="livesum",
)


class ObserveConnections:
    """ASGI middleware: counts open websockets, and names the serving process when asked.

    A websocket counts from its handshake's acceptance until the application is done with it
    (a refused handshake never counts). With ``SERVED_BY_HEADER`` every HTTP response and
    websocket handshake carries ``X-Served-By: <process id>``.
    """

    def __init__(self, app):
        self.app = app
        self.served_by = [(b"x-served-by", str(os.getpid()).encode())] if settings.SERVED_BY_HEADER else []

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        opened = None

        async def observed_send(message):
            nonlocal opened
            if message["type"] in ("http.response.start", "websocket.accept") and self.served_by:
                message = {**message, "headers": [*message.get("headers", ()), *self.served_by]}
            if message["type"] == "websocket.accept" and opened is None:
                opened = WEBSOCKETS_OPEN.labels(scope["path"])
                opened.inc()
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            if opened is not None:
                opened.dec()


@functools.cache
def _allowed_networks(networks: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(network, strict=False) for network in networks)


def may_read_metrics(address: str | None) -> bool:
    """Whether a client at ``address`` is in ``METRICS_ALLOWED_NETWORKS``."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:  # no address (a Unix socket) or not an IP
        return False
    return any(ip in network for network in _allowed_networks(tuple(settings.METRICS_ALLOWED_NETWORKS)))


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db$")


def forget_dead_processes(folder: str) -> None:
    """Drop the live gauges of processes that are gone (a worker the server restarted): their
    files would otherwise be added up for ever. Counters and histograms stay: their totals do
    not go down when a worker dies."""
    pids = {int(m.group(1)) for path in glob.glob(os.path.join(folder, "gauge_live*_*.db"))
            if (m := _LIVE_GAUGE_FILE.search(path))}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, folder)
        except PermissionError:  # alive, someone else's
            pass


@never_cache
@require_safe
def metrics_page(request):
    """Every metric in Prometheus's text format, added up over the processes when there are several."""
    if not may_read_metrics(client_address(request)):
        return HttpResponseForbidden("Metrics are not served to this address (METRICS_ALLOWED_NETWORKS).\n",
                                     content_type="text/plain")
    if folder := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        forget_dead_processes(folder)
    return ExportToDjangoView(request)
