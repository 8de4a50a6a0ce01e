"""What the API accepts: JSON read with limits (``tokfeed.strict_json``) and fields that refuse
what they would otherwise coerce.

DRF's own fields are lenient in ways that hide client bugs: ``IntegerField`` takes ``"12"``,
``1.0`` and ``true``; ``UUIDField`` takes the integer ``12345``. JSON has types, so ours insist
on them. The feed's websocket events are validated with the same fields.
"""
from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions, serializers
from rest_framework.parsers import JSONParser

from . import strict_json

#: Largest id PostgreSQL's bigint holds: a larger one is no id of ours (and must not reach SQL).
MAX_ID = 2**63 - 1


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "the request body is too large"
    default_code = "too_large"


class StrictJSONParser(JSONParser):
    """JSON bodies up to ``API_MAX_BODY_BYTES`` (or the setting ``max_bytes_setting`` names, for
    an endpoint that takes larger bodies), nested at most ``strict_json.MAX_DEPTH`` deep."""

    max_bytes_setting = "API_MAX_BODY_BYTES"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = getattr(settings, self.max_bytes_setting)
        raw = stream.read(limit + 1) if stream is not None else b""
        try:
            return strict_json.loads(raw, max_bytes=limit)
        except strict_json.TooLarge:
            raise PayloadTooLarge(f"the request body is over {limit} bytes") from None
        except strict_json.RefusedJSON as exc:
            if exc.field:
                raise serializers.ValidationError({exc.field: [exc.message]}, code=exc.code) from None
            raise exceptions.ParseError(exc.message, code=exc.code) from None


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: not a string of digits, not 1.0, not a boolean."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(StrictIntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)


class StrictUUIDField(serializers.UUIDField):
    """A UUID written as a string (DRF would read the integer 12345 as one)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)
