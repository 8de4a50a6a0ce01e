"""Validation of the feed's client events (DESIGN.md, "Websocket protocol").

The websocket consumer and its HTTP fallback accept the same JSON payloads, so both parse them
here into a ``FeedEvent``; anything else becomes an ``InvalidEvent`` that names the field at fault.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from django import forms

#: Event types and, for explicit actions, the signal type they record.
ACTIONS = {"like": "LIKE", "not_interested": "NOT_INTERESTED"}
EVENT_TYPES = ("view", "next", *ACTIONS)

#: The next batch is sent when the viewer has this many cards or fewer left after the current one.
REFILL_AT = 2

#: A view longer than a day is a client bug, not attention.
MAX_WATCHED_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class FeedEvent:
    type: str
    event_id: uuid.UUID
    video: int | None = None
    watched_ms: int | None = None
    duration_ms: int | None = None
    #: Cards the client has left after the one now on screen, sent when it wants more.
    remaining: int | None = None
    #: The last batch number the client holds: the batch wanted is the one after it.
    batch: int | None = None

    @property
    def wants_batch(self) -> bool:
        return self.type == "next" or (self.remaining is not None and self.remaining <= REFILL_AT)


class InvalidEvent(Exception):
    def __init__(self, message: str, *, event_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message, self.event_id, self.field = message, event_id, field


class FeedEventForm(forms.Form):
    type = forms.ChoiceField(choices=[(t, t) for t in EVENT_TYPES])
    event_id = forms.UUIDField()
    video = forms.IntegerField(required=False, min_value=1)
    watched_ms = forms.IntegerField(required=False, min_value=0, max_value=MAX_WATCHED_MS)
    duration_ms = forms.IntegerField(required=False, min_value=0, max_value=MAX_WATCHED_MS)
    remaining = forms.IntegerField(required=False, min_value=0)
    batch = forms.IntegerField(required=False, min_value=0)

    def clean(self):
        data = super().clean()
        kind = data.get("type")
        if kind in ("view", *ACTIONS) and data.get("video") is None and "video" not in self.errors:
            self.add_error("video", f"a {kind} event names its video")
        if kind == "view" and data.get("watched_ms") is None and "watched_ms" not in self.errors:
            self.add_error("watched_ms", "a view event gives watched_ms")
        return data


def parse_event(raw: str | bytes | dict) -> FeedEvent:
    """A client event from its JSON text (or already decoded object); raises ``InvalidEvent``."""
    if not isinstance(raw, dict):
        try:
            raw = json.loads(raw)
        except (TypeError, ValueError, UnicodeDecodeError):
            raise InvalidEvent("malformed JSON: an event is a JSON object") from None
        if not isinstance(raw, dict):
            raise InvalidEvent("an event is a JSON object")
    event_id = raw.get("event_id") if isinstance(raw.get("event_id"), str) else None
    # Booleans are ints in JSON-to-Python terms; no field of an event is a boolean.
    for name, value in raw.items():
        if isinstance(value, bool):
            raise InvalidEvent(f"{name}: a boolean is not allowed here", event_id=event_id, field=name)
    form = FeedEventForm(data=raw)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        field = None if field == "__all__" else field
        raise InvalidEvent(f"{field or 'event'}: {errors[0]}", event_id=event_id, field=field)
    return FeedEvent(**{name: form.cleaned_data.get(name) for name in FeedEventForm.base_fields})
