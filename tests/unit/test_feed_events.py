"""Parsing the feed's client events, and how cards show counts (no database)."""
import uuid

import pytest

from feed.client_events import InvalidEvent, parse_event
from feed.selectors import compact_count


def test_a_view_event_parses_and_asks_for_a_batch_two_cards_from_the_end():
    event_id = str(uuid.uuid4())
    event = parse_event(f'{{"type": "view", "event_id": "{event_id}", "video": 7, "watched_ms": 16000, '
                        f'"duration_ms": 20000, "remaining": 3, "batch": 1}}')
    assert (event.type, str(event.event_id), event.video, event.watched_ms, event.duration_ms) == (
        "view", event_id, 7, 16000, 20000)
    assert not event.wants_batch
    assert parse_event({"type": "view", "event_id": event_id, "video": 7, "watched_ms": 1, "remaining": 2}).wants_batch
    assert parse_event({"type": "next", "event_id": event_id}).wants_batch
    assert not parse_event({"type": "like", "event_id": event_id, "video": 7}).wants_batch


@pytest.mark.parametrize("raw, field", [
    ("not json", None),
    ("[1, 2]", None),
    ({"type": "view", "event_id": "x", "video": 1, "watched_ms": 1}, "event_id"),
    ({"type": "view", "event_id": str(uuid.uuid4()), "video": 1, "watched_ms": 1.5}, "watched_ms"),
    ({"type": "view", "event_id": str(uuid.uuid4()), "video": True, "watched_ms": 1}, "video"),
    ({"type": "not_interested", "event_id": str(uuid.uuid4())}, "video"),
    ({"type": "next", "event_id": str(uuid.uuid4()), "batch": -1}, "batch"),
    ({"type": "undo", "event_id": str(uuid.uuid4())}, "undoes"),
    ({"type": "undo", "event_id": str(uuid.uuid4()), "undoes": "x"}, "undoes"),
    ({"type": "share", "event_id": str(uuid.uuid4())}, "video"),
])
def test_a_bad_event_names_its_field_and_keeps_its_event_id(raw, field):
    with pytest.raises(InvalidEvent) as error:
        parse_event(raw)
    assert error.value.field == field
    if isinstance(raw, dict) and field != "event_id":
        assert error.value.event_id == raw["event_id"]


def test_actions_and_their_undo_parse():
    like, undo = str(uuid.uuid4()), str(uuid.uuid4())
    for kind in ("like", "share", "follow_creator", "not_interested"):
        assert parse_event({"type": kind, "event_id": like, "video": 3}).type == kind
    event = parse_event({"type": "undo", "event_id": undo, "undoes": like})
    assert (event.type, str(event.undoes), event.video) == ("undo", like, None)


def test_counts_are_compact():
    assert [compact_count(n) for n in (0, 999, 1000, 1250, 44_800, 3_400_000, 2_000_000_000)] == [
        "0", "999", "1K", "1.2K", "44.8K", "3.4M", "2B"]
