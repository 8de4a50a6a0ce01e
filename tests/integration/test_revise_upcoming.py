"""services.revise_upcoming: after a view, the cards not yet shown are re-ranked with it.

The card after the viewed one is on screen and stays; the later live cards with no signal are
ranked again by the current state, and those whose place goes to another video are withdrawn and
replaced at their batch number and position. No video is ever shown twice, a withdrawn card's
view is still accepted, a withdrawn card nobody saw may be served again, and whatever reads a
batch back reads the replacements.

The sessions run on ``seed-default``: after its random first batch, a skip leaves it with no
interest, so a revision draws random videos and replaces every card after the one on screen
(unless a draw picks a card's own video again, when it is kept: the sessions have a fixed id,
which seeds their draws, so the tests below see the same draws every time).
"""
import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from feed import selectors, services
from feed.client_events import REFILL_AT
from feed.models import FeedSession, Impression, Signal


SESSION_ID = uuid.UUID(int=20261202)


def view(session, video, watched_ms=500):
    return services.record_view(session.id, video_id=video, event_id=uuid.uuid4(), watched_ms=watched_ms)


def live(session) -> list[tuple[int, int, int]]:
    """(batch, position, video) of the session's live impressions, in order."""
    return list(Impression.objects.filter(session=session, withdrawn=False)
                .order_by("batch_number", "position").values_list("batch_number", "position", "video_id"))


def test_a_skip_replaces_the_cards_after_the_one_on_screen(catalog_db):
    session = services.start_session(algorithm="seed-default", session_id=SESSION_ID)
    first = services.next_batch(session.id)
    served = [item.video.pk for item in first.items]
    assert len(served) == 5

    outcome = view(session, served[0])  # card 0 skipped: card 1 is on screen now
    revised = services.revise_upcoming(session.id, viewed_video=served[0])

    assert [(r.batch, r.position) for r in revised] == [(1, 2), (1, 3), (1, 4)]
    assert all(r.state == outcome.state and r.item.position == r.position for r in revised)
    new = [r.item.video.pk for r in revised]
    assert not set(new) & set(served) and len(set(new)) == 3
    # The card on screen kept its place; the three after it were withdrawn, not deleted.
    assert live(session) == [(1, 0, served[0]), (1, 1, served[1]), *((1, p, v) for p, v in zip((2, 3, 4), new))]
    withdrawn = Impression.objects.filter(session=session, withdrawn=True)
    assert sorted(withdrawn.values_list("position", "video_id")) == list(zip((2, 3, 4), served[2:]))
    state = FeedSession.objects.get(pk=session.pk).state
    replacement = Impression.objects.get(session=session, withdrawn=False, position=2)
    assert (replacement.state, replacement.batch_type, replacement.source) == (
        state, revised[0].batch_type, revised[0].item.source)
    assert state == outcome.state  # revising does not move the state machine


def test_a_withdrawn_cards_view_is_accepted_and_reads_show_the_replacements(catalog_db):
    session = services.start_session(algorithm="seed-default", session_id=SESSION_ID)
    served = [item.video.pk for item in services.next_batch(session.id).items]
    view(session, served[0])
    revised = services.revise_upcoming(session.id, viewed_video=served[0])
    new = [r.item.video.pk for r in revised]

    # The refill resent (after a reconnect) and a reload show the replacements, not the withdrawn.
    again = services.next_batch(session.id, after=0)
    assert again.number == 1
    assert [(i.position, i.video.pk) for i in again.items] == list(enumerate([*served[:2], *new]))
    session.refresh_from_db()
    assert [(c.position, c.video.pk) for c in selectors.unwatched_cards(session)] == list(
        enumerate([*served[:2], *new]))[1:]

    # The client showed withdrawn card 2 anyway (it had moved on before the replacement came).
    outcome = services.record_view(session.id, video_id=served[2], event_id=uuid.uuid4(), watched_ms=16_000)
    assert (outcome.signal, outcome.duplicate) == ("HIGH_ATTN", False)
    # Its place is 2: the card after it (the new card 3) is on screen, the new card 4 is replaced.
    second = services.revise_upcoming(session.id, viewed_video=served[2])
    assert [(r.batch, r.position) for r in second] == [(1, 4)]
    assert second[0].item.video.pk not in {*served, *new}
    assert live(session)[3] == (1, 3, new[1])


def test_no_video_is_served_twice_over_many_views_with_refills(catalog_db):
    """A viewer driven as the client drives the feed: refill on the view REFILL_AT from the end,
    every view followed by a revision swapped into the queue."""
    session = services.start_session(algorithm="seed-default", session_id=SESSION_ID)
    batch = services.next_batch(session.id)
    queue = [(batch.number, i.position, i.video.pk) for i in batch.items]
    shown, revisions = [], 0
    previous = None
    while len(shown) < 40:
        card = queue.pop(0)
        if previous is not None:
            view(session, previous[2], watched_ms=16_000 if len(shown) % 3 else 800)
            revised = services.revise_upcoming(session.id, viewed_video=previous[2])
            revisions += bool(revised)
            by_place = {(r.batch, r.position): r.item.video.pk for r in revised}
            assert set(by_place) <= {(b, p) for b, p, _ in queue}  # only cards after the one on screen
            queue = [(b, p, by_place.get((b, p), v)) for b, p, v in queue]
        if len(queue) <= REFILL_AT:
            batch = services.next_batch(session.id, after=batch.number)
            queue += [(batch.number, i.position, i.video.pk) for i in batch.items]
        shown.append(card[2])
        previous = card

    assert len(set(shown)) == len(shown) == 40
    assert revisions > 0
    every = list(Impression.objects.filter(session=session).values_list("video_id", flat=True))
    assert len(set(every)) == len(every)  # one row per video: a withdrawn one served again takes its row back
    assert shown == [v for b, p, v in live(session) if v in set(shown)]


def test_nothing_to_replace_writes_nothing(catalog_db):
    session = services.start_session(algorithm="seed-default", session_id=SESSION_ID)
    served = [item.video.pk for item in services.next_batch(session.id).items]
    view(session, served[3])  # card 4, the batch's last, is on screen: nothing after it

    with CaptureQueriesContext(connection) as queries:
        assert services.revise_upcoming(session.id, viewed_video=served[3]) == []
    writes = [q["sql"] for q in queries if re.search(r"\bINSERT\s+INTO\b|\bUPDATE\s+\S+\s+SET\b", q["sql"], re.I)]
    assert writes == []
    assert live(session) == [(1, p, v) for p, v in enumerate(served)]


def test_a_card_with_a_signal_is_kept(catalog_db):
    session = services.start_session(algorithm="seed-default", session_id=SESSION_ID)
    served = [item.video.pk for item in services.next_batch(session.id).items]
    services.record_action(session.id, video_id=served[3], event_id=uuid.uuid4(), signal_type="LIKE")
    view(session, served[0])

    revised = services.revise_upcoming(session.id, viewed_video=served[0])

    assert [r.position for r in revised] == [2, 4]
    assert live(session)[3] == (1, 3, served[3])


def test_a_seeded_session_revises_the_same_way_every_time(catalog_db):
    session_id = uuid.uuid4()

    def run():
        session = services.start_session(algorithm="seed-default", session_id=session_id)
        served = [item.video.pk for item in services.next_batch(session.id).items]
        services.record_view(session.id, video_id=served[0], event_id=uuid.UUID(int=1), watched_ms=16_000)
        revised = [r.item.video.pk for r in services.revise_upcoming(session.id, viewed_video=served[0])]
        FeedSession.objects.filter(pk=session.pk).delete()
        return served, revised

    assert run() == run()


def test_only_the_owner_may_revise(catalog_db):
    session = services.start_session(algorithm="seed-default", partner="acme", session_id=SESSION_ID)
    served = [item.video.pk for item in services.next_batch(session.id, partner="acme").items]
    services.record_view(session.id, video_id=served[0], event_id=uuid.uuid4(), watched_ms=100, partner="acme")
    with pytest.raises(services.SessionNotFound):
        services.revise_upcoming(session.id, viewed_video=served[0])
    assert len(services.revise_upcoming(session.id, viewed_video=served[0], partner="acme")) == 3
    assert Signal.objects.filter(session=session).count() == 1


def test_a_withdrawn_card_nobody_saw_goes_back_to_the_catalog(catalog_db):
    """Revisions must not use up the catalog: each would otherwise withdraw the best upcoming
    videos for good (a rare taste ran out within a few batches this way)."""
    from algorithms.selectors import load_blueprint

    session = services.start_session(algorithm="seed-default", session_id=SESSION_ID)
    served = [item.video.pk for item in services.next_batch(session.id).items]
    view(session, served[0])
    services.revise_upcoming(session.id, viewed_video=served[0])
    # The client showed withdrawn card 2 anyway: its view makes it seen for good.
    services.record_view(session.id, video_id=served[2], event_id=uuid.uuid4(), watched_ms=16_000)

    def seen():
        locked = FeedSession.objects.select_related("algorithm").get(pk=session.pk)
        return services._history(locked, load_blueprint(locked.algorithm), 5)[1]

    # Withdrawn cards 3 and 4 may still be on the client's screen (a refused swap) until the
    # viewer has viewed a card past their place.
    assert {served[0], served[1], served[2], served[3], served[4]} <= seen()
    later = [r.item.video.pk for r in services.revise_upcoming(session.id, viewed_video=served[2])]
    view(session, later[-1])  # the card at place 4 (batch 1): past cards 3 and 4's old places
    assert served[3] not in seen() and served[4] not in seen()  # withdrawn, never shown: back in the pool
    assert {served[0], served[1], served[2]} <= seen()  # shown, on screen, and the one seen anyway
