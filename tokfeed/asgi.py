"""ASGI entry point: HTTP through Django, websockets through Channels, both observed
(open websockets counted, the serving process named when asked: ``tokfeed.metrics``).

HTTP runs Django's middleware and the (all synchronous) views on one worker thread per request
(``OneThreadASGIHandler``), not Django's default async chain.
"""
import asyncio
import contextvars
import os
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokfeed.settings")


class OneThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler with the middleware chain and the view run synchronously in one hop
    to a worker thread (``BaseHandler.get_response``, as under WSGI).

    Django's own builds an async chain and adapts whatever is not async: each ``MiddlewareMixin``
    middleware then runs its ``process_request`` and ``process_response`` through
    ``sync_to_async``, a sync-only one (whitenoise, ours) switches back, and the sync view is one
    more hop, about a dozen thread switches a request. Every view and middleware here is
    synchronous (the websockets go through Channels, not this), so they gain nothing from the
    event loop: on 2 shared cores an API read took ~5.5 ms of a process's time this way and
    ~3.4 ms in one hop (``bench/api.py``). Reading the body and sending the response stay on the
    event loop, as in Django's.

    A request's thread-sensitive work (its ``request_started`` and ``request_finished`` signals,
    the chain and the view: everything that touches its database connection) runs on one thread
    of its own, as in Django's; but the thread is reused by a later request rather than started
    and joined for each (asgiref's ``ThreadSensitiveContext(executor=...)``). A thread whose
    request was abandoned (the client went away, Django cancelled the wait, but the view may
    still be running on it) or ended with an exception is not reused.
    """

    #: Idle single-thread executors kept for reuse, at most (more are shut down when idle).
    MAX_IDLE_THREADS = 64

    def __init__(self):
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._idle_threads: list[ThreadPoolExecutor] = []  # touched from the event loop only

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = (self._idle_threads.pop() if self._idle_threads
                  else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request"))
        abandoned = _Abandoned()
        _abandoned.set(abandoned)  # the tasks handle() creates see this object (a copy of the context)
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        except BaseException:
            thread.shutdown(wait=False)
            raise
        if abandoned.yes or len(self._idle_threads) >= self.MAX_IDLE_THREADS:
            thread.shutdown(wait=False)
        else:
            self._idle_threads.append(thread)

    async def get_response_async(self, request):
        try:
            return await sync_to_async(self.get_response, thread_sensitive=True)(request)
        except asyncio.CancelledError:
            if (state := _abandoned.get(None)) is not None:
                state.yes = True
            raise


class _Abandoned:
    yes = False


_abandoned: contextvars.ContextVar[_Abandoned] = contextvars.ContextVar("tokfeed_request_abandoned")


def get_asgi_application() -> OneThreadASGIHandler:
    """``django.core.asgi.get_asgi_application`` with ``OneThreadASGIHandler``."""
    import django

    django.setup(set_prefix=False)
    return OneThreadASGIHandler()


# Django must be set up before anything imports models (the websocket routes do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402

from feed.routing import websocket_urlpatterns  # noqa: E402
from tokfeed.metrics import ObserveConnections  # noqa: E402

application = ObserveConnections(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A socket finds its viewer's feed session in the Django session (the page put it
        # there); only pages served from our own hosts may open one.
        "websocket": AllowedHostsOriginValidator(SessionMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
))
