"""``tokfeed.page_middleware``: through the project's whole middleware chain, a page request gets
Django's session, user, messages, CSRF check, htmx details and simple_history's request, and a
partner API request (``/api/v1/``, a key and never a cookie) goes past them all. The views under
``/api/v1/`` are DRF's, exempt from CSRF (``feed.api_auth.check_api_scopes`` holds every one of
them to that), so the API answers exactly as before; the probe here is a plain view, which shows
that nothing of the pages' middleware touched the request."""
import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import path
from simple_history.models import HistoricalRecords


def probe(request):
    seen = {
        "session": hasattr(request, "session"),
        "user": hasattr(request, "user"),
        "messages": hasattr(request, "_messages"),
        "htmx": hasattr(request, "htmx"),
        "history": getattr(HistoricalRecords.context, "request", None) is request,
    }
    return HttpResponse(",".join(name for name, there in seen.items() if there))


urlpatterns = [path("api/v1/probe/", probe), path("pages/probe/", probe)]


@pytest.mark.urls(__name__)
def test_pages_get_the_page_middleware_and_the_partner_api_goes_past_it():
    client = Client(enforce_csrf_checks=True)
    assert client.get("/pages/probe/").content == b"session,user,messages,htmx,history"
    assert client.get("/api/v1/probe/").content == b""
    # The CSRF check: a page's POST without a token is refused; the API's is not looked at.
    assert client.post("/pages/probe/").status_code == 403
    assert client.post("/api/v1/probe/").status_code == 200
