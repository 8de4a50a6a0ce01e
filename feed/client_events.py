"""Validation of the feed's client events (DESIGN.md, "Websocket protocol").

The websocket consumer and its HTTP fallback accept the same JSON payloads, so both parse them
here into a ``FeedEvent``; anything else becomes an ``InvalidEvent`` that names the field at
fault and says why in a machine-readable ``code``. The JSON is read with the API's limits
(``tokfeed.strict_json``) and its fields are the API's strict ones: an id is a JSON integer,
an event id a UUID string, and no field is a boolean.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass

from rest_framework import serializers

from tokfeed import strict_json
from tokfeed.api_input import IdField, StrictIntegerField, StrictUUIDField

from .services import MAX_WATCHED_MS

#: Event types and, for explicit actions, the signal type they record.
ACTIONS = {"like": "LIKE", "share": "SHARE", "follow_creator": "FOLLOW_CREATOR", "not_interested": "NOT_INTERESTED"}
#: ``undo`` withdraws the action whose event_id it names in ``undoes`` (an unlike, an unfollow).
EVENT_TYPES = ("view", "next", "undo", *ACTIONS)

#: The next batch is sent when the viewer has this many cards or fewer left after the current one.
REFILL_AT = 2

#: An event is a few hundred bytes; a frame or body past this is refused unread.
MAX_EVENT_BYTES = 4096


@dataclass(frozen=True)
class FeedEvent:
    type: str
    event_id: uuid.UUID
    video: int | None = None
    watched_ms: int | None = None
    #: The video's length as played; None when unknown (the catalog's is used).
    duration_ms: int | None = None
    #: Cards the client has left after the one now on screen, sent when it wants more.
    remaining: int | None = None
    #: The last batch number the client holds: the batch wanted is the one after it.
    batch: int | None = None
    #: For an undo: the event_id of the action it withdraws.
    undoes: uuid.UUID | None = None

    @property
    def wants_batch(self) -> bool:
        return self.type == "next" or (self.remaining is not None and self.remaining <= REFILL_AT)


class InvalidEvent(Exception):
    def __init__(self, message: str, *, event_id: str | None = None, field: str | None = None,
                 code: str = "invalid"):
        super().__init__(message)
        self.message, self.event_id, self.field, self.code = message, event_id, field, code


class FeedEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=EVENT_TYPES)
    event_id = StrictUUIDField()
    video = IdField(required=False)
    watched_ms = StrictIntegerField(required=False, min_value=0, max_value=MAX_WATCHED_MS)
    duration_ms = StrictIntegerField(required=False, min_value=0, max_value=MAX_WATCHED_MS)
    remaining = StrictIntegerField(required=False, min_value=0, max_value=10_000)
    batch = StrictIntegerField(required=False, min_value=0, max_value=2**31 - 1)
    undoes = StrictUUIDField(required=False)

    def validate(self, data):
        kind = data["type"]
        if kind in ("view", *ACTIONS) and data.get("video") is None:
            raise serializers.ValidationError({"video": f"a {kind} event names its video"}, code="required")
        if kind == "undo" and data.get("undoes") is None:
            raise serializers.ValidationError({"undoes": "an undo names the event_id it undoes"}, code="required")
        if kind == "view" and data.get("watched_ms") is None:
            raise serializers.ValidationError({"watched_ms": "a view event gives watched_ms"}, code="required")
        # The feed's client sends 0 for a video whose length it does not know.
        if data.get("duration_ms") == 0:
            data["duration_ms"] = None
        return data


def parse_event(raw: str | bytes | dict) -> FeedEvent:
    """A client event from its JSON text (or already decoded object); raises ``InvalidEvent``."""
    if not isinstance(raw, dict):
        try:
            raw = strict_json.loads(raw, max_bytes=MAX_EVENT_BYTES)
        except strict_json.RefusedJSON as exc:
            raise InvalidEvent(exc.message, field=exc.field, code=exc.code) from None
        if not isinstance(raw, dict):
            raise InvalidEvent("an event is a JSON object")
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    body = FeedEventSerializer(data=raw)
    if not body.is_valid():
        field, errors = next(iter(body.errors.items()))
        field = None if field == "non_field_errors" else field
        raise InvalidEvent(f"{field or 'event'}: {errors[0]}", event_id=event_id, field=field, code=errors[0].code)
    return FeedEvent(**body.validated_data)
