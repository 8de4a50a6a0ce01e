"""ASGI entry point: HTTP through Django, websockets through Channels, both observed
(open websockets counted, the serving process named when asked: ``tokfeed.metrics``).

HTTP runs Django's middleware and the (all synchronous) views on one worker thread per request
(``OneThreadASGIHandler``), not Django's default async chain.
"""
import os

from asgiref.sync import sync_to_async
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
    """

    def __init__(self):
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


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
