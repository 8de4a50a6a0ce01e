"""The OpenAPI schema's view of each operation (``/api/schema/``, shown at ``/api/docs/``): the
scope its key needs (``feed.api_auth``).

Apart from ``feed.api_auth``: drf-spectacular's ``AutoSchema`` imports DRF's views, whose
defaults import the authentication class.
"""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

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
