"""What the server does with a client event, whichever way it came (websocket or HTTP fallback).

Server frames (DESIGN.md, "Websocket protocol"):
- ``{"type": "ack", "event_id", "signal", "state", "duplicate"}`` for every applied event;
  a resent ``event_id`` is acknowledged as it was first applied, and changes nothing;
- ``{"type": "error", "event_id" (or null), "error", "field", "code", "retry", "retry_after_ms"}``:
  ``retry`` true means the event was not applied and may be sent again (the same event, the same
  ``event_id``) after ``retry_after_ms``; false (and ``retry_after_ms`` null) that it never will
  be; ``code`` is machine-readable (the API's codes: ``invalid``, ``too_large``, ``busy``,
  ``overloaded``...);
- ``{"type": "state", "state", "signal"}``: a change made from another tab or device;
- the next batch as HTML: the cards inside ``<div id="feed-cards" hx-swap-oob="beforeend">``
  for htmx to append, plus the overlay's state swapped out of band;
- after a view's ack, the cards that replace the upcoming ones (``services.revise_upcoming``) as
  HTML: each ``<article class="card" id="card-{batch}-{position}" hx-swap-oob="outerHTML">``
  swaps in for the card of that id; the client refuses those for cards already reached. Over
  HTTP the same HTML is the ack's ``html`` field.

Everything here is synchronous (ORM, templates); the consumer calls it in a worker thread.
"""
from __future__ import annotations

import json

from django.template.loader import render_to_string

from tokfeed.errors import ServiceError

from . import selectors, services
from .client_events import ACTIONS, FeedEvent


def ack_frame(event_id, signal: str | None, state: str | None, duplicate: bool = False) -> dict:
    return {"type": "ack", "event_id": str(event_id), "signal": signal, "state": state, "duplicate": duplicate}


#: The retry delay of a server error: the same event may well succeed when sent again.
SERVER_ERROR_RETRY_MS = 1000


def error_frame(event_id, error: str, field: str | None = None, *, code: str = "invalid",
                retry_after_ms: int | None = None) -> dict:
    """An error frame; retryable (``retry``) when given the delay after which to send it again."""
    return {"type": "error", "event_id": str(event_id) if event_id else None, "error": error, "field": field,
            "code": code, "retry": retry_after_ms is not None, "retry_after_ms": retry_after_ms}


def service_error_frame(event_id, exc: ServiceError) -> dict:
    """The frame for a use case's refusal: retryable when the error says when to come back."""
    return error_frame(event_id, exc.message, exc.field, code=exc.code, retry_after_ms=exc.retry_after_ms)


def dumps(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))


def apply_event(session_id, event: FeedEvent) -> dict:
    """Record the event's signal (once per event_id) and return its ack; raises ``FeedError``.

    ``session_id`` is the viewer's own feed session (from their browser session): partners'
    sessions are not reachable from here.
    """
    if event.type == "view":
        outcome = services.record_view(session_id, video_id=event.video, event_id=event.event_id,
                                       watched_ms=event.watched_ms, duration_ms=event.duration_ms)
    elif event.type in ACTIONS:
        outcome = services.record_action(session_id, video_id=event.video, event_id=event.event_id,
                                         signal_type=ACTIONS[event.type])
    elif event.type == "undo":
        outcome = services.undo_action(session_id, event_id=event.event_id, undoes=event.undoes)
    else:  # "next" records nothing: its ack reports where the session stands.
        state = selectors.session_state(session_id)
        if state is None:
            raise services.SessionNotFound(f"no feed session {session_id}")
        return ack_frame(event.event_id, None, state)
    return ack_frame(event.event_id, outcome.signal, outcome.state, outcome.duplicate)


def batch_after(session_id, after: int | None) -> tuple[int, list[selectors.Card], str]:
    """The batch that follows batch ``after``: (number, cards, the session's state now).

    Asked again for a batch already served (a refill request resent after a reconnect lost the
    reply), it serves the same cards rather than a second batch (``services.next_batch``).
    """
    batch = services.next_batch(session_id, after=after)
    return batch.number, selectors.explained(session_id, selectors.cards_of_batch(batch)), batch.next_state


def revision_after(session_id, event: FeedEvent, ack: dict) -> str | None:
    """After a newly applied view (``ack`` is its ack): the cards that replace those the viewer
    has not reached, as HTML that swaps each in by id (``render_revision``); None when nothing
    changed."""
    if event.type != "view" or ack.get("duplicate"):
        return None
    revised = services.revise_upcoming(session_id, viewed_video=event.video)
    return render_revision(selectors.explained(session_id, selectors.cards_of_revision(revised))) if revised else None


def render_revision(cards: list[selectors.Card]) -> str:
    """Cards that replace upcoming ones, each marked to swap out of band for the card of its id."""
    return render_to_string("feed/_revision.html", {"cards": cards})


def render_cards(cards: list[selectors.Card], state: str, *, oob: bool) -> str:
    """The batch's cards as HTML: wrapped for an out-of-band append (websocket) or bare (htmx GET)."""
    return render_to_string("feed/_batch.html", {"cards": cards, "state": state, "oob": oob})
