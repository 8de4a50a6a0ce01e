"""How the OpenAPI schema (``/api/schema/``, shown at ``/api/docs/``) describes partner keys and
the scope each operation needs (``partners.auth``).

Apart from ``partners.auth``: drf-spectacular's ``AutoSchema`` imports DRF's views, whose
defaults import the authentication class.
"""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from .auth import KEYWORD, ApiKeyAuthentication
from .models import SCOPES


class ScopedAutoSchema(AutoSchema):
    """drf-spectacular's schema, where each operation says the scope its key needs: in its
    description, which /api/docs/ shows, and as ``x-api-scope``. (Added to the operation, not
    through ``get_description``, which ``extend_schema(description=...)`` replaces.)"""

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        scope = getattr(self.view, "api_scope", None)
        if operation is None or scope is None:
            return operation
        note = f"Needs a key with the `{scope}` scope ({SCOPES[scope]}); without it, 403 `insufficient_scope`."
        operation["description"] = f"{operation['description']}\n\n{note}" if operation.get("description") else note
        operation["x-api-scope"] = scope
        return operation


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema (``/api/schema/``) describes the key."""

    target_class = ApiKeyAuthentication
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": f"`{KEYWORD} <key>`, a key from `manage.py create_api_key NAME --scopes "
                               f"{','.join(SCOPES)}` (or the admin). Each operation names the scope its key "
                               f"needs: {'; '.join(f'`{s}`: {what}' for s, what in SCOPES.items())}."}
