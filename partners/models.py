"""Partner API keys and what each may do.

A ``PartnerKey`` is ``djangorestframework-api-key``'s key (hashed at rest, shown once; the
library's documented way to extend keys: a subclass of ``AbstractAPIKey``) with scopes. A
partner is the name its keys are created under: keys of one name are one partner's, and what
one creates (a feed session) the others may use.

Each API view names the one scope it needs (its ``api_scope``, ``partners.auth``); a key holds
any of them. New keys read and run sessions; ingesting is granted on purpose.
"""
from __future__ import annotations

from django.db import models
from rest_framework_api_key.models import AbstractAPIKey

#: Every scope, with what it opens. A key holds scope ``s`` when its ``scope_<s>`` field is true.
SCOPES = {
    "read": "the catalog, similar videos and creators, recommendations",
    "sessions": "partner feed sessions: starting them, their batches and signals",
    "ingest": "the ingestion endpoints: adding to the catalog",
}
#: What a key holds unless it is given other scopes.
DEFAULT_SCOPES = ("read", "sessions")


def scope_field(scope: str) -> str:
    return f"scope_{scope}"


class PartnerKey(AbstractAPIKey):
    name = models.CharField(max_length=50, help_text="The partner the key is for: keys of one name are one "
                                                     "partner's, and share its sessions. 50 characters max.")
    scope_read = models.BooleanField("read", default="read" in DEFAULT_SCOPES, help_text=SCOPES["read"])
    scope_sessions = models.BooleanField("sessions", default="sessions" in DEFAULT_SCOPES,
                                         help_text=SCOPES["sessions"])
    scope_ingest = models.BooleanField("ingest", default="ingest" in DEFAULT_SCOPES, help_text=SCOPES["ingest"])

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "partner API key"
        verbose_name_plural = "partner API keys"

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes this key holds, in ``SCOPES`` order."""
        return tuple(scope for scope in SCOPES if getattr(self, scope_field(scope)))

    def has_scope(self, scope: str) -> bool:
        return bool(getattr(self, scope_field(scope)))
