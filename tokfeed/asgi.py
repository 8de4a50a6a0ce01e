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
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.urls import set_script_prefix

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
    of its own, as in Django's, and in one hop (``serve``): Django's sends each signal in a hop of
    its own, three a request, each a wake-up of the thread and a pass of the GIL between it and
    the event loop. A response whose content is made (not streaming) is closed there too, before
    it is sent: its connection goes back to the pool as soon as the view is done, as under WSGI;
    a streaming one is closed once its content has been sent, as in Django's. The thread is
    reused by a later request rather than started and joined for each (asgiref's
    ``ThreadSensitiveContext(executor=...)``). A thread whose
    request was abandoned (the client went away, Django cancelled the wait, but the view may
    still be running on it) or ended with an exception is not reused.
    """

    #: Idle single-thread executors kept for reuse, at most (more are shut down when idle).
    MAX_IDLE_THREADS = 64

    def __init__(self):
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._idle_threads: list[ThreadPoolExecutor] = []  # touched from the event loop only
        # Made once: each request's call finds its thread in its own context (ThreadSensitiveContext).
        self._serve_on_request_thread = sync_to_async(self.serve, thread_sensitive=True)

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

    async def handle(self, scope, receive, send):
        """Django's ``ASGIHandler.handle``, with the request's signals sent on its worker thread
        in the hop that runs the chain (``serve``), as under WSGI, rather than each in a hop of
        its own."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request():
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while it was sent
            if response.streaming:  # its content was read just now: closed after it
                await sync_to_async(response.close)()
            return response

        # Django's: a disconnect while the response is made cancels the wait for it.
        tasks = [asyncio.create_task(self.listen_for_disconnect(receive)), asyncio.create_task(process_request())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        body_file.close()

    def serve(self, request, scope):
        """On the request's worker thread: ``request_started``, the chain and the view, and (a
        response whose content is made: not streaming) its ``close`` (``request_finished``:
        the database connection goes back to the pool)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        response = self.get_response(request)
        response._handler_class = self.__class__
        if not response.streaming:
            response.close()
        return response

    async def get_response_async(self, request):
        try:
            return await self._serve_on_request_thread(request, request.scope)
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
