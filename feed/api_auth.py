"""Who calls the API, and whether their key may do what they ask.

A partner sends ``Authorization: Api-Key <key>`` with a ``PartnerKey`` (``feed.models``).
Authentication, not only a permission: a request without a key is told so (401
``not_authenticated``), one with a wrong, revoked or expired key that the key is invalid (401
``authentication_failed``), instead of DRF's 403 "credentials were not provided" for both.

Every API view declares the one scope it needs as its class attribute ``api_scope`` (a key of
``feed.models.SCOPES``); a key without it is answered 403 ``insufficient_scope``, naming the
scope. There is no default: a view without ``api_scope`` fails ``manage.py check``
(``check_api_scopes``) and, should it be served anyway, answers 500 rather than open up. The
OpenAPI schema describes the key (``ApiKeyScheme``, here) and says each operation's scope
(``feed.api_schema``).

A key once checked is remembered by each process for ``API_KEY_CACHE_SECONDS`` (by the SHA-256
of the key, never the key itself), so a partner's stream of requests costs one lookup every few
seconds rather than one a request. Saving or deleting a key forgets every remembered key in the
process that saved it at once; in the other worker processes a revoked key stops working within
``API_KEY_CACHE_SECONDS``.
"""
from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework_api_key.permissions import KeyParser

from tokfeed.ttl_cache import TTLCache

from .models import SCOPES, PartnerKey

KEYWORD = "Api-Key"
#: What a key looks like ("<prefix>.<secret>"): anything else is refused before it reaches SQL.
KEY_SHAPE = re.compile(r"[A-Za-z0-9]{1,32}\.[A-Za-z0-9]{1,128}")
#: The URLs whose views must declare a scope.
API_PREFIX = "api/v1/"


class CheckedKeys:
    """The keys this process checked lately, by the SHA-256 of the key: the ``PartnerKey`` row, or
    None for an invalid key, remembered ``API_KEY_CACHE_SECONDS`` (``tokfeed.ttl_cache``)."""

    def __init__(self):
        self._rows: TTLCache[PartnerKey | None] = TTLCache(lambda: settings.API_KEY_CACHE_SECONDS,
                                                           max_entries=MAX_CHECKED_KEYS)

    def lookup(self, key: str) -> PartnerKey | None:
        """The valid, unexpired key ``key`` names, or None."""
        api_key = self._rows.get(hashlib.sha256(key.encode()).hexdigest(), lambda: read_key(key))
        if api_key is not None and api_key.has_expired:
            return None
        return api_key

    def forget(self) -> None:
        self._rows.forget()


#: How many checked keys a process remembers at most (valid ones are few; this bounds invalid ones).
MAX_CHECKED_KEYS = 10_000


def read_key(key: str) -> PartnerKey | None:
    """The usable (unrevoked) ``PartnerKey`` that ``key`` is, from the database, or None."""
    if not KEY_SHAPE.fullmatch(key):
        return None
    try:
        return PartnerKey.objects.get_from_key(key)
    except PartnerKey.DoesNotExist:
        return None


checked_keys = CheckedKeys()


@receiver([post_save, post_delete], sender=PartnerKey, dispatch_uid="forget_checked_partner_keys")
def forget_checked_keys(**kwargs) -> None:
    """A key saved (revoked, its scopes changed) or deleted takes effect here at once."""
    checked_keys.forget()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``request.auth`` is the caller's ``PartnerKey``; ``request.user`` is anonymous."""

    key_parser = KeyParser()

    def authenticate(self, request):
        key = self.key_parser.get(request)
        if not key:
            return None
        api_key = checked_keys.lookup(key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("invalid API key: it is unknown, revoked or expired")
        return AnonymousUser(), api_key

    def authenticate_header(self, request):
        return KEYWORD


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"


def required_scope(view) -> str:
    """The scope ``view`` declares; ImproperlyConfigured if it declares none (or no known one)."""
    scope = getattr(view, "api_scope", None)
    if scope not in SCOPES:
        raise ImproperlyConfigured(f"{type(view).__name__}.api_scope must be one of {', '.join(SCOPES)}, "
                                   f"not {scope!r}")
    return scope


class HasScopedPartnerKey(permissions.BasePermission):
    """A partner's key that holds the view's ``api_scope``."""

    def has_permission(self, request, view):
        scope = required_scope(view)
        if not isinstance(request.auth, PartnerKey):
            raise exceptions.NotAuthenticated(f"an API key is required: send Authorization: {KEYWORD} <key>")
        if not request.auth.has_scope(scope):
            raise InsufficientScope(f"this API key lacks the '{scope}' scope ({SCOPES[scope]}), which "
                                    f"{request.method} {request.path} needs: ask for a key that holds it")
        return True


def partner_of(request) -> str:
    """The partner calling (the name of its key)."""
    return request.auth.name


def api_views(patterns, prefix: str = ""):
    """``(route, view callback)`` of every URL pattern in ``patterns``, included ones too."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if hasattr(pattern, "url_patterns"):
            yield from api_views(pattern.url_patterns, route)
        else:
            yield route, pattern.callback


def check_api_scopes(app_configs=None, patterns=None, **kwargs) -> list[checks.Error]:
    """An error for each view under ``/api/v1/`` that is not a DRF view declaring a known scope."""
    if patterns is None:
        from django.urls import get_resolver

        patterns = get_resolver().url_patterns
    errors = []
    for route, callback in api_views(patterns):
        if not route.startswith(API_PREFIX):
            continue
        view_class = getattr(callback, "cls", None)
        if getattr(view_class, "api_scope", None) not in SCOPES:
            errors.append(checks.Error(
                f"/{route}: {getattr(view_class, '__name__', callback)} declares no api_scope",
                hint=f"set the view's api_scope to the scope a key needs to call it: one of {', '.join(SCOPES)}",
                obj=view_class or callback, id="feed.E001"))
    return errors


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema (``/api/schema/``) describes the key."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": f"`{KEYWORD} <key>`, a key from `manage.py create_api_key NAME --scopes "
                               f"{','.join(SCOPES)}` (or the admin). Each operation names the scope its key "
                               f"needs: {'; '.join(f'`{s}`: {what}' for s, what in SCOPES.items())}."}
