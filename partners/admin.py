"""Partner keys in the admin: the one place to issue, scope and revoke them.

The library's ``APIKeyModelAdmin`` shows a new key once, in a message, on creation; its own
``APIKey`` admin is taken off the site (those keys moved to ``PartnerKey``, migration 0002).
"""
from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from .models import SCOPES, PartnerKey, scope_field

admin.site.unregister(APIKey)

SCOPE_FIELDS = tuple(scope_field(scope) for scope in SCOPES)


@admin.register(PartnerKey)
class PartnerKeyAdmin(APIKeyModelAdmin):
    list_display = ("name", "prefix", "scope_list", "created", "expiry_date", "_has_expired", "revoked")
    list_filter = ("created", "revoked", *SCOPE_FIELDS)
    fieldsets = (
        (None, {"fields": ("name", "prefix", "expiry_date", "revoked")}),
        ("Scopes", {"fields": SCOPE_FIELDS,
                    "description": "What the key may call. Each API endpoint needs one scope (see /api/docs/)."}),
    )

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, *SCOPE_FIELDS) if obj is not None and obj.revoked else fields

    @admin.display(description="scopes")
    def scope_list(self, key: PartnerKey) -> str:
        return ", ".join(key.scopes) or "none"
