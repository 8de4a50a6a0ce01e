"""ASGI entry point: HTTP through Django, websockets through Channels, both observed
(open websockets counted, the serving process named when asked: ``tokfeed.metrics``)."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokfeed.settings")
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
