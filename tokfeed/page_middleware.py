"""The middleware only pages need, in variants that let the partner API's requests go straight past.

Partners call ``/api/v1/`` with a key in ``Authorization``, never a cookie, and its views are
DRF's: exempt from CSRF, their user given by the key (``feed.api_auth``, which also holds every
view under the path to that). Django's session, CSRF check, user and messages, htmx's request
details and simple_history's request are a browser's; on an API read they cost CPU for nothing
(``bench/api.py``). ``MIDDLEWARE`` lists these variants where Django's stood, so pages see the
same chain, in the same order, as before; the middleware that concerns every answer (metrics,
CORS, security headers, backpressure, trailing slashes, ``X-Frame-Options``) is Django's own.
"""
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.middleware import csrf
from django_htmx import middleware as htmx
from simple_history import middleware as history

#: The partner API: keyed, cookie-less, DRF's.
PARTNER_API_PATH = "/api/v1/"


def is_partner_api(request) -> bool:
    return request.path.startswith(PARTNER_API_PATH)


class PagesOnly:
    """Mixed into a middleware class: a partner API request is passed on untouched."""

    def __call__(self, request):
        if is_partner_api(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(PagesOnly, sessions.SessionMiddleware):
    pass


class CsrfViewMiddleware(PagesOnly, csrf.CsrfViewMiddleware):
    def process_view(self, request, callback, callback_args, callback_kwargs):
        if is_partner_api(request):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)


class AuthenticationMiddleware(PagesOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(PagesOnly, messages.MessageMiddleware):
    pass


class HtmxMiddleware(PagesOnly, htmx.HtmxMiddleware):
    pass


def HistoryRequestMiddleware(get_response):  # noqa: N802 (a middleware factory, named as simple_history's)
    """simple_history's (a function, not a class), with a partner API request passed on untouched."""
    pages = history.HistoryRequestMiddleware(get_response)

    def middleware(request):
        return get_response(request) if is_partner_api(request) else pages(request)

    return middleware
