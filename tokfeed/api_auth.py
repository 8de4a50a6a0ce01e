"""Who calls the API: a partner's key (``Authorization: Api-Key <key>``).

Keys are ``djangorestframework-api-key``'s (hashed at rest; ``manage.py create_api_key``). A
partner is the name its keys are created under: keys of one name are one partner's, and what
one creates (a feed session) the others may use.

Authentication, not only a permission: a request without a key is told so (401
``not_authenticated``), one with a wrong, revoked or expired key that the key is invalid (401
``authentication_failed``), instead of DRF's 403 "credentials were not provided" for both.
"""
from __future__ import annotations

import re

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework_api_key.models import APIKey
from rest_framework_api_key.permissions import KeyParser

KEYWORD = "Api-Key"
#: What a key looks like ("<prefix>.<secret>"): anything else is refused before it reaches SQL.
KEY_SHAPE = re.compile(r"[A-Za-z0-9]{1,32}\.[A-Za-z0-9]{1,128}")


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """``request.auth`` is the caller's ``APIKey``; ``request.user`` is anonymous."""

    key_parser = KeyParser()

    def authenticate(self, request):
        key = self.key_parser.get(request)
        if not key:
            return None
        api_key = None
        if KEY_SHAPE.fullmatch(key):
            try:
                api_key = APIKey.objects.get_from_key(key)
            except APIKey.DoesNotExist:
                pass
        if api_key is None or api_key.has_expired:
            raise exceptions.AuthenticationFailed("invalid API key: it is unknown, revoked or expired")
        return AnonymousUser(), api_key

    def authenticate_header(self, request):
        return KEYWORD


class HasPartnerKey(permissions.BasePermission):
    def has_permission(self, request, view):
        if not isinstance(request.auth, APIKey):
            raise exceptions.NotAuthenticated(f"an API key is required: send Authorization: {KEYWORD} <key>")
        return True


def partner_of(request) -> str:
    """The partner calling (the name of its key)."""
    return request.auth.name


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema (``/api/schema/``) describes the key."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": f"`{KEYWORD} <key>`, a key from `manage.py create_api_key NAME`"}
