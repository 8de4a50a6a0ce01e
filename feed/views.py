"""The feed page and the HTTP fallback of its websocket (for clients that cannot keep one open)."""
import logging

from django.core.validators import slug_re
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from algorithms.models import Algorithm
from tokfeed.capacity import CAPACITY
from tokfeed.errors import ServiceError
from tokfeed.rate_limits import seconds_to_wait

from . import events, selectors, services
from .client_events import MAX_EVENT_BYTES, REFILL_AT, InvalidEvent, parse_event

logger = logging.getLogger(__name__)

#: A ``?algorithm=`` longer than any slug is refused before it is looked up.
MAX_SLUG_LENGTH = Algorithm._meta.get_field("slug").max_length

#: A viewer counts as idle, and watch time stops, after this long without any input.
IDLE_AFTER_MS = 60_000


class NewSessionsLimited(Exception):
    def __init__(self, wait_s: int):
        self.wait_s = wait_s


def _feed_session(request):
    """The viewer's feed session, started on first visit and remembered in the Django session.

    Anonymous viewers keep theirs as long as their Django session lives; a logged-in viewer
    gets their most recent one on every device. ``?algorithm=slug`` switches to that algorithm.
    A client starting anonymous sessions faster than ``feed_session``'s rate (one per page view
    when it keeps no cookie) gets ``NewSessionsLimited``.
    """
    algorithm = request.GET.get("algorithm") or None
    if algorithm is not None and not (len(algorithm) <= MAX_SLUG_LENGTH and slug_re.match(algorithm)):
        # (Checked before any query: PostgreSQL refuses a NUL, and no slug has one.)
        raise services.FeedError("unknown algorithm: a slug is letters, digits, - and _", field="algorithm")
    user = request.user if request.user.is_authenticated else None
    if user is not None:
        session = selectors.viewer_feed_session(user, algorithm)
    else:
        session = selectors.anonymous_feed_session(request.session.get(selectors.FEED_SESSION_KEY), algorithm)
    if session is None:
        if user is None and (wait := seconds_to_wait(request, "feed_session")) is not None:
            raise NewSessionsLimited(wait)
        if request.session.session_key is None:
            request.session.save()  # an anonymous session is keyed by the Django session
        session = services.start_session(
            algorithm=algorithm, viewer=user, anonymous_key="" if user else request.session.session_key
        )
    request.session[selectors.FEED_SESSION_KEY] = str(session.id)
    return session


@require_GET
def feed_page(request):
    try:
        session = _feed_session(request)
    except NewSessionsLimited as exc:
        response = render(request, "feed/unavailable.html", {
            "error": f"Too many new feeds were started from your network: try again in {exc.wait_s} seconds.",
        }, status=429)
        response["Retry-After"] = str(exc.wait_s)
        return response
    except services.FeedError as exc:
        return render(request, "feed/unavailable.html", {"error": exc.message}, status=400)
    cards, state = selectors.unwatched_cards(session), session.state
    if not cards:
        batch = services.next_batch(session.id)
        cards, state = selectors.cards_of_batch(batch), batch.next_state
    cards = selectors.explained(session.id, cards)
    last_view = selectors.last_view_signal(session.id)
    return render(request, "feed/page.html", {
        "feed_session": session,
        "cards": cards,
        "state": state,
        "last_signal": last_view.type if last_view else "",
        "debug": request.GET.get("debug") == "1",
        # ?transport=http forces the HTTP fallback (operators checking it; the browser test).
        "use_websocket": request.GET.get("transport") != "http",
        "refill_at": REFILL_AT,
        "idle_after_ms": IDLE_AFTER_MS,
    })


def _refusal(response: HttpResponse, exc: ServiceError) -> HttpResponse:
    """``response`` given the status of a use case's refusal, and when to retry if it may be."""
    # A feed session that is gone is a conflict with the page (reload it), not a missing URL.
    response.status_code = 409 if isinstance(exc, services.SessionNotFound) else exc.status
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


@require_POST
def feed_events(request):
    """One client event by POST (CSRF-protected): the same JSON as on the websocket; answers its ack."""
    session_id = request.session.get(selectors.FEED_SESSION_KEY)
    if not session_id:
        return JsonResponse(events.error_frame(None, "no feed session: open the feed page first", code="no_session"),
                            status=409)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isascii() or not declared.isdigit() or int(declared) > MAX_EVENT_BYTES:
        return JsonResponse(events.error_frame(None, f"an event is at most {MAX_EVENT_BYTES} bytes", code="too_large"),
                            status=413)
    try:
        event = parse_event(request.body)
    except InvalidEvent as exc:
        status = 413 if exc.code == "too_large" else 400
        return JsonResponse(events.error_frame(exc.event_id, exc.message, exc.field, code=exc.code), status=status)
    try:
        ack = events.apply_event(session_id, event)
    except ServiceError as exc:
        return _refusal(JsonResponse(events.service_error_frame(event.event_id, exc)), exc)
    # The cards the viewer has not reached, re-ranked with this view, ride on its ack ("html", as
    # the websocket's frame). Optional work, as on the websocket: only when this request's slot
    # (CapacityMiddleware) is all the process has in flight. Not getting them costs only the
    # re-ranking: the ack still goes.
    html = None
    if event.type == "view" and not ack["duplicate"] and CAPACITY.try_acquire_idle("revision", held=1):
        try:
            html = events.revision_after(session_id, event, ack)
        except Exception:
            logger.exception("revising the cards after event %s on session %s failed", event.event_id, session_id)
        finally:
            CAPACITY.release()
    return JsonResponse({**ack, "html": html} if html else ack)


@require_POST
def feed_batch(request):
    """The batch after ``after=N`` (a form field) as card HTML for htmx to append (the fallback's
    refill). POST, as it serves a batch; CSRF-protected like the events."""
    session_id = request.session.get(selectors.FEED_SESSION_KEY)
    if not session_id:
        return HttpResponse("no feed session: open the feed page first", status=409, content_type="text/plain")
    after = request.POST.get("after")
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 9):
        return HttpResponseBadRequest("after must be a batch number", content_type="text/plain")
    try:
        _, cards, state = events.batch_after(session_id, int(after) if after is not None else None)
    except ServiceError as exc:
        return _refusal(HttpResponse(exc.message, content_type="text/plain"), exc)
    return HttpResponse(events.render_cards(cards, state, oob=False))


@require_POST
def feed_reset(request):
    """"Reset my feed": a fresh session (on the same algorithm) that knows nothing of the old one;
    the old one's liked videos stay on the viewer's liked page."""
    user = request.user if request.user.is_authenticated else None
    old = request.session.get(selectors.FEED_SESSION_KEY)
    algorithm = selectors.algorithm_of_session(old) if old else None
    if user is None and (wait := seconds_to_wait(request, "feed_session")) is not None:
        response = render(request, "feed/unavailable.html", {
            "error": f"Too many new feeds were started from your network: try again in {wait} seconds.",
        }, status=429)
        response["Retry-After"] = str(wait)
        return response
    if request.session.session_key is None:
        request.session.save()
    session = services.start_session(algorithm=algorithm, viewer=user,
                                     anonymous_key="" if user else request.session.session_key)
    request.session[selectors.FEED_SESSION_KEY] = str(session.id)
    return redirect("feed")


@require_GET
def liked_page(request):
    """The videos the viewer liked (and did not unlike), newest first, across their feed sessions."""
    user = request.user if request.user.is_authenticated else None
    videos = selectors.liked_videos(user=user, anonymous_key=request.session.session_key)
    return render(request, "feed/liked.html", {"videos": videos})
