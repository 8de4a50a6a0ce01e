"""Issuing partner keys (the admin issues them through the library's admin base class)."""
from __future__ import annotations

from collections.abc import Iterable

from tokfeed.errors import ServiceError

from .models import DEFAULT_SCOPES, SCOPES, PartnerKey, scope_field

NAME_MAX_CHARS = PartnerKey._meta.get_field("name").max_length


def checked_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """``scopes`` in ``SCOPES`` order; refused if they name an unknown scope, or none."""
    named = {scope.strip() for scope in scopes if scope.strip()}
    if unknown := sorted(named - SCOPES.keys()):
        raise ServiceError(f"unknown scope {', '.join(map(repr, unknown))}: the scopes are {', '.join(SCOPES)}",
                           "scopes", code="unknown_scope")
    if not named:
        raise ServiceError(f"give at least one scope of {', '.join(SCOPES)}", "scopes", code="required")
    return tuple(scope for scope in SCOPES if scope in named)


def create_key(name: str, scopes: Iterable[str] = DEFAULT_SCOPES) -> tuple[PartnerKey, str]:
    """A new key for partner ``name`` holding exactly ``scopes``: (the row, the key itself).

    The key is only ever known here: the row keeps its hash.
    """
    name = name.strip()
    if not name or len(name) > NAME_MAX_CHARS:
        raise ServiceError(f"the partner's name must be 1 to {NAME_MAX_CHARS} characters", "name")
    scopes = checked_scopes(scopes)
    return PartnerKey.objects.create_key(name=name, **{scope_field(s): s in scopes for s in SCOPES})
