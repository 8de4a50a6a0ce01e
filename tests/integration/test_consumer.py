"""The feed websocket through the whole ASGI stack (origin check, Django session, consumer) on the
real database, with the in-memory and the Redis channel layer.

The consumer does its database work in worker threads, which see only committed rows: these
tests are transactional and bring their own small catalog (``small_catalog``). pytest-asyncio is
not a dependency: each test drives its coroutine with ``async_to_sync``.
"""
import asyncio
import copy
import json
import logging
import os
import re
import threading
import uuid

import psycopg
import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from prometheus_client import REGISTRY

from algorithms.blueprints import SEED_BLUEPRINT
from algorithms.services import save_blueprint
from feed import consumers, services
from feed.models import FeedSession, Impression, Signal
from feed.selectors import FEED_SESSION_KEY
from tests.conftest import database_url, wait_for_other_connections_to_close
from tokfeed.asgi import application

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
OUR_ORIGIN = (b"origin", b"http://127.0.0.1:8000")
TIMEOUT = 30  # seconds; generous because the machine is shared, never reached when things work


def socket(*headers) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/feed/", headers=list(headers))


@pytest.fixture
def viewer(small_catalog, monkeypatch):
    """A feed session that has served its first batch, and the cookie of the Django session holding it."""
    # Worker threads open their own connections: they must not outlive the test (the test
    # database is dropped at the end, which fails while a connection is open).
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    # Its states are named below; a fixed id fixes the randomness of its batches.
    session = services.start_session(algorithm="seed-default", session_id=uuid.UUID(int=20261202))
    batch = services.next_batch(session.id)  # what the page showed
    store = SessionStore()
    store[FEED_SESSION_KEY] = str(session.id)
    store.create()
    cookie = (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={store.session_key}".encode())
    yield session, [item.video.pk for item in batch.items], cookie
    wait_for_other_connections_to_close("the consumer")


@pytest.fixture(params=["in-memory", "redis"])
def channel_layer(request, settings):
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL).ping()
        except redis.ConnectionError as exc:
            pytest.fail(f"Redis must run at {REDIS_URL} for this test: {exc}")
        settings.CHANNEL_LAYERS = {"default": {
            "BACKEND": "tokfeed.channel_layer.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": f"tokfeed-test-{uuid.uuid4().hex[:8]}"},
        }}
    else:
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return request.param


def test_views_are_acked_applied_once_and_refilled(viewer, channel_layer):
    session, videos, cookie = viewer
    first_event = str(uuid.uuid4())

    async def scenario():
        tab, other_tab = await _connected_tabs(cookie, cookie)

        # A 16 s view: HIGH_ATTN, and the machine jumps to H; the viewer's other tab hears of it.
        await tab.send_json_to({"type": "view", "event_id": first_event, "video": videos[0],
                                "watched_ms": 16000, "duration_ms": 20000})
        assert await tab.receive_json_from(timeout=TIMEOUT) == {
            "type": "ack", "event_id": first_event, "signal": "HIGH_ATTN", "state": "H", "duplicate": False}
        assert await other_tab.receive_json_from(timeout=TIMEOUT) == {
            "type": "state", "state": "H", "signal": "HIGH_ATTN"}
        # Then the cards after the one now on screen, re-ranked with that view (this tab only).
        first_revision = await tab.receive_from(timeout=TIMEOUT)
        assert await other_tab.receive_nothing(timeout=0.3)

        # The same event resent (after a reconnect) is acked as it was and changes nothing.
        await tab.send_json_to({"type": "view", "event_id": first_event, "video": videos[0], "watched_ms": 500})
        assert await tab.receive_json_from(timeout=TIMEOUT) == {
            "type": "ack", "event_id": first_event, "signal": "HIGH_ATTN", "state": "H", "duplicate": True}

        # Malformed events get an error frame; the connection stays open.
        await tab.send_to(text_data="{not json")
        error = await tab.receive_json_from(timeout=TIMEOUT)
        assert error["type"] == "error" and error["event_id"] is None and "JSON" in error["error"]
        bad_id = str(uuid.uuid4())
        await tab.send_json_to({"type": "view", "event_id": bad_id, "video": "first", "watched_ms": 10})
        error = await tab.receive_json_from(timeout=TIMEOUT)
        assert (error["type"], error["event_id"], error["field"], error["retry"]) == ("error", bad_id, "video", False)

        # Two cards from the end: the ack, then the next batch as cards for htmx to append.
        skip_event = str(uuid.uuid4())
        await tab.send_json_to({"type": "view", "event_id": skip_event, "video": videos[1], "watched_ms": 1200,
                                "duration_ms": 9000, "remaining": 2, "batch": 1})
        ack = await tab.receive_json_from(timeout=TIMEOUT)
        assert (ack["event_id"], ack["signal"], ack["state"]) == (skip_event, "SKIP", "H")
        # A revision frame only if the ranking changed (in H a neutral skip may change nothing).
        second_revision = await tab.receive_from(timeout=TIMEOUT)
        if 'hx-swap-oob="outerHTML"' in second_revision:
            fragment = await tab.receive_from(timeout=TIMEOUT)
        else:
            second_revision, fragment = "", second_revision

        # Asking again for the same batch on this connection gets the ack only.
        next_event = str(uuid.uuid4())
        await tab.send_json_to({"type": "next", "event_id": next_event, "batch": 1})
        ack = await tab.receive_json_from(timeout=TIMEOUT)
        assert (ack["event_id"], ack["signal"], ack["state"]) == (next_event, None, "M")
        assert await tab.receive_nothing(timeout=0.3)

        await tab.disconnect()
        await other_tab.disconnect()
        layer = get_channel_layer()
        if hasattr(layer, "close_pools"):
            await layer.close_pools()
        return first_revision, second_revision, fragment

    first_revision, second_revision, fragment = async_to_sync(scenario)()

    # The first view re-ranked the random cards after the one on screen with H's picks, sending
    # only those that changed (a random card may already be one of H's picks); the second could
    # only change cards after the new one on screen.
    first = revised_cards(first_revision)
    assert first and {(b, p) for b, p, _ in first} <= {(1, 2), (1, 3), (1, 4)}
    assert all(video != videos[p] for _, p, video in first)
    assert {(b, p) for b, p, _ in revised_cards(second_revision)} <= {(1, 3), (1, 4)}
    expected = dict(enumerate(videos))
    expected |= {p: v for _, p, v in first} | {p: v for _, p, v in revised_cards(second_revision)}
    live_batch_one = list(Impression.objects.filter(session=session, batch_number=1, withdrawn=False)
                          .order_by("position").values_list("position", "video_id"))
    assert live_batch_one == sorted(expected.items())

    assert fragment.startswith('<div id="feed-cards" hx-swap-oob="beforeend">')
    served = re.findall(r'<article class="card" id="card-2-(\d)"[^>]*?data-video="(\d+)"', fragment, re.S)
    batch_two = list(Impression.objects.filter(session=session, batch_number=2, withdrawn=False).order_by("position")
                     .values_list("position", "video_id"))
    assert [(int(p), int(v)) for p, v in served] == batch_two and len(batch_two) == 5
    # Served from H (personalised around the 16 s view), then the BATCH edge moved on to M.
    assert Impression.objects.filter(session=session, batch_number=2, state="H", source="ann").count() == 5
    assert '<output id="why-state" hx-swap-oob="true">M</output>' in fragment

    signals = list(Signal.objects.filter(session=session).order_by("id").values_list("type", "watched_ms"))
    assert signals == [("HIGH_ATTN", 16000), ("SKIP", 1200)]
    assert FeedSession.objects.get(pk=session.pk).state == "M"


REVISED_CARD = re.compile(
    r'<article class="card" id="card-(\d+)-(\d+)" hx-swap-oob="outerHTML"[^>]*?data-video="(\d+)"', re.S)


def revised_cards(frame: str) -> list[tuple[int, int, int]]:
    """(batch, position, video) of every card in a revision frame ("" for none sent); nothing else is in it."""
    found = [tuple(map(int, m)) for m in REVISED_CARD.findall(frame)]
    assert frame.count("<article") == len(found) and (found or not frame), frame[:500]
    return found


def test_a_views_ack_comes_first_then_the_cards_not_yet_shown_revised(viewer):
    session, videos, cookie = viewer
    event = _view(videos[0], watched_ms=800)  # a skip of card 0: card 1 is on screen now

    async def scenario():
        tab = socket(OUR_ORIGIN, cookie)
        assert (await tab.connect(timeout=TIMEOUT))[0]
        await tab.send_json_to(event)
        ack = await tab.receive_json_from(timeout=TIMEOUT)
        revision = await tab.receive_from(timeout=TIMEOUT)
        nothing_else = await tab.receive_nothing(timeout=0.3)
        await tab.disconnect()
        return ack, revision, nothing_else

    ack, revision, nothing_else = async_to_sync(scenario)()
    assert (ack["type"], ack["event_id"], ack["signal"]) == ("ack", event["event_id"], "SKIP")
    assert nothing_else
    revised = revised_cards(revision)
    live = list(Impression.objects.filter(session=session, withdrawn=False).order_by("batch_number", "position")
                .values_list("batch_number", "position", "video_id"))
    # Random picks after a skip: every card after the one on screen changes, unless the draw
    # happened to pick the same video for its place again (then it is kept, not rewritten).
    assert revised and {(b, p) for b, p, _ in revised} <= {(1, 2), (1, 3), (1, 4)}
    assert set(revised) <= set(live[2:])
    assert live[:2] == [(1, 0, videos[0]), (1, 1, videos[1])]  # the card on screen stays
    replaced_videos = {videos[p] for _, p, _ in revised}
    assert set(Impression.objects.filter(session=session, withdrawn=True).values_list("video_id", flat=True)) == (
        replaced_videos - {v for _, _, v in live})
    assert all(v != videos[p] for _, p, v in revised)


def test_a_busy_process_acks_and_applies_the_view_but_skips_its_revision(viewer, settings):
    """The revision is optional work (``tokfeed.capacity``): with other work in flight in the
    process it is skipped, never waited for; the view is acked and applied all the same, and the
    next view, once the process is idle, is revised with every view up to it."""
    settings.MAX_INFLIGHT = 8
    session, videos, cookie = viewer
    busy_view, idle_view = _view(videos[0], watched_ms=800), _view(videos[1], watched_ms=800)
    skipped = consumers_skipped_revisions()

    async def scenario():
        tab = socket(OUR_ORIGIN, cookie)
        assert (await tab.connect(timeout=TIMEOUT))[0]
        assert consumers.CAPACITY.try_acquire()  # another viewer's event, in flight meanwhile
        try:
            await tab.send_json_to(busy_view)
            busy_ack = await tab.receive_json_from(timeout=TIMEOUT)
            no_revision = await tab.receive_nothing(timeout=0.5)
        finally:
            consumers.CAPACITY.release()
        await tab.send_json_to(idle_view)  # the process is idle now: this one is revised
        idle_ack = await tab.receive_json_from(timeout=TIMEOUT)
        revision = await tab.receive_from(timeout=TIMEOUT)
        await tab.disconnect()
        return busy_ack, no_revision, idle_ack, revision

    busy_ack, no_revision, idle_ack, revision = async_to_sync(scenario)()
    assert (busy_ack["event_id"], busy_ack["signal"], busy_ack["duplicate"]) == (busy_view["event_id"], "SKIP", False)
    assert no_revision
    assert consumers_skipped_revisions() == skipped + 1
    assert list(Signal.objects.filter(session=session).order_by("id").values_list("event_id", flat=True)) == [
        uuid.UUID(busy_view["event_id"]), uuid.UUID(idle_view["event_id"])]
    # The skipped revision wrote nothing; the idle one replaced cards after the one now on screen (card 2).
    assert (idle_ack["event_id"], idle_ack["signal"]) == (idle_view["event_id"], "SKIP")
    revised = revised_cards(revision)
    assert revised and {(b, p) for b, p, _ in revised} <= {(1, 3), (1, 4)}
    assert set(Impression.objects.filter(session=session, withdrawn=True).values_list("position", flat=True)) <= {3, 4}
    assert consumers.CAPACITY.in_flight == 0


def consumers_skipped_revisions() -> float:
    return REGISTRY.get_sample_value("tokfeed_optional_work_skipped_total", {"work": "revision"}) or 0.0


def test_sockets_from_other_origins_are_refused(db):
    async def connect(*headers):
        communicator = socket(*headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        await communicator.disconnect()
        return connected

    assert async_to_sync(connect)((b"origin", b"http://evil.example"),) is False
    assert async_to_sync(connect)() is False  # no Origin header at all


def test_a_socket_without_a_feed_session_is_told_and_closed(db):
    async def scenario():
        communicator = socket(OUR_ORIGIN)
        assert (await communicator.connect(timeout=TIMEOUT))[0]
        error = await communicator.receive_json_from(timeout=TIMEOUT)
        closed = await communicator.receive_output(timeout=TIMEOUT)
        await communicator.disconnect()
        return error, closed

    error, closed = async_to_sync(scenario)()
    assert error["type"] == "error" and "feed page" in error["error"]
    assert closed == {"type": "websocket.close", "code": 4401}


async def _connected_tabs(*cookies):
    """A socket per cookie, each connected (the handshake accepted), in order."""
    tabs = [socket(OUR_ORIGIN, cookie) for cookie in cookies]
    for tab in tabs:
        assert (await tab.connect(timeout=TIMEOUT))[0]
    return tabs


def _second_viewer():
    """Another viewer's feed session, its first batch served: (session, cookie)."""
    session = services.start_session()
    services.next_batch(session.id)
    store = SessionStore()
    store[FEED_SESSION_KEY] = str(session.id)
    store.create()
    return session, (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={store.session_key}".encode())


def _lock_session_row(session_id):
    """Another client's transaction holding the session's row, as a slow request would."""
    holder = psycopg.connect(database_url())
    holder.execute(f"SELECT 1 FROM {FeedSession._meta.db_table} WHERE id = %s FOR UPDATE", [session_id])
    return holder


def _view(video, **extra):
    return {"type": "view", "event_id": str(uuid.uuid4()), "video": video, "watched_ms": 16000, **extra}


def test_a_locked_session_does_not_hold_up_another_viewers_acks(viewer, settings):
    # The locked viewer waits for its lock as long as the test holds it: only isolation can
    # get the other viewer's ack through meanwhile.
    settings.FEED_LOCK_TIMEOUT_MS = 120_000
    session, videos, cookie = viewer
    other, other_cookie = _second_viewer()
    other_video = other.impressions.first().video_id
    holder = _lock_session_row(session.pk)

    async def scenario():
        # The locked viewer has several tabs open, each with an event on its way.
        tabs = [socket(OUR_ORIGIN, cookie) for _ in range(3)]
        for tab, video in zip(tabs, videos):
            assert (await tab.connect(timeout=TIMEOUT))[0]
            await tab.send_json_to(_view(video))
        other_tab = socket(OUR_ORIGIN, other_cookie)
        assert (await other_tab.connect(timeout=TIMEOUT))[0]
        await other_tab.send_json_to(_view(other_video))
        other_ack = await other_tab.receive_json_from(timeout=TIMEOUT)
        still_waiting = await tabs[0].receive_nothing(timeout=0.2)
        holder.rollback()  # the slow request ends: the locked viewer's events go through, in turn
        acks = [await tab.receive_json_from(timeout=TIMEOUT) for tab in tabs]
        for tab in (*tabs, other_tab):
            await tab.disconnect()
        return other_ack, still_waiting, acks

    try:
        other_ack, still_waiting, acks = async_to_sync(scenario)()
    finally:
        holder.close()
    assert (other_ack["type"], other_ack["signal"]) == ("ack", "HIGH_ATTN")
    assert still_waiting
    assert [(a["type"], a["signal"]) for a in acks] == [("ack", "HIGH_ATTN")] * 3
    assert Signal.objects.filter(session=session).count() == 3


def test_a_session_locked_past_the_timeout_answers_a_retryable_busy_error(viewer, settings):
    settings.FEED_LOCK_TIMEOUT_MS = 300
    session, videos, cookie = viewer
    event = _view(videos[0])
    holder = _lock_session_row(session.pk)

    async def scenario():
        tab = socket(OUR_ORIGIN, cookie)
        assert (await tab.connect(timeout=TIMEOUT))[0]
        await tab.send_json_to(event)
        refused = await tab.receive_json_from(timeout=TIMEOUT)
        holder.rollback()
        await tab.send_json_to(event)  # the client sends it again, as a retryable error says
        ack = await tab.receive_json_from(timeout=TIMEOUT)
        await tab.disconnect()
        return refused, ack

    try:
        refused, ack = async_to_sync(scenario)()
    finally:
        holder.close()
    assert (refused["type"], refused["event_id"], refused["code"], refused["retry"]) == (
        "error", event["event_id"], "busy", True)
    assert (ack["type"], ack["signal"], ack["duplicate"]) == ("ack", "HIGH_ATTN", False)


def test_oversized_and_deeply_nested_frames_get_an_error_frame_and_the_socket_stays(viewer):
    session, videos, cookie = viewer

    async def scenario():
        tab = socket(OUR_ORIGIN, cookie)
        assert (await tab.connect(timeout=TIMEOUT))[0]
        frames = []
        for text in ('{"pad": "' + "x" * 8_000_000 + '"}', "[" * 2000 + "]" * 2000,
                     '{"type": "view", "event_id": "' + str(uuid.uuid4()) + '", "video": 1, "watched_ms": 1, "x": "\\u0000"}'):
            await tab.send_to(text_data=text)
            frames.append(await tab.receive_json_from(timeout=TIMEOUT))
        await tab.send_json_to(_view(videos[0]))
        frames.append(await tab.receive_json_from(timeout=TIMEOUT))
        await tab.disconnect()
        return frames

    too_large, too_deep, nul, ack = async_to_sync(scenario)()
    assert (too_large["type"], too_large["code"]) == ("error", "too_large")
    assert (too_deep["type"], too_deep["code"]) == ("error", "too_deep")
    assert (nul["type"], nul["code"], nul["field"]) == ("error", "invalid_text", "x")
    assert (ack["type"], ack["signal"]) == ("ack", "HIGH_ATTN")


def test_a_views_duration_is_validated_stored_and_judged_by_watch_ratios(viewer):
    session, videos, cookie = viewer
    data = copy.deepcopy(SEED_BLUEPRINT)
    data["tokfeed"]["thresholds"].update(high_ratio=0.8, mid_ratio=0.5, low_ratio=0.3)
    save_blueprint(data, slug=session.algorithm.slug)  # the viewer's algorithm, now with ratios
    bad = [_view(videos[0], watched_ms=6000, duration_ms=value) for value in (-1, "7000", 1.5)]
    good = _view(videos[0], watched_ms=6000, duration_ms=7000)

    async def scenario():
        tab = socket(OUR_ORIGIN, cookie)
        assert (await tab.connect(timeout=TIMEOUT))[0]
        frames = []
        for event in (*bad, good):
            await tab.send_json_to(event)
            frames.append(await tab.receive_json_from(timeout=TIMEOUT))
        await tab.disconnect()
        return frames

    *errors, ack = async_to_sync(scenario)()
    for event, error in zip(bad, errors):
        assert (error["type"], error["event_id"], error["field"], error["retry"]) == (
            "error", event["event_id"], "duration_ms", False), error
    # 6 s of a 7 s video: high attention by ratio, where 15/12/9 s alone say SKIP.
    assert (ack["type"], ack["event_id"], ack["signal"], ack["state"]) == ("ack", good["event_id"], "HIGH_ATTN", "H")
    assert list(Signal.objects.filter(session=session).values_list("type", "watched_ms", "duration_ms")) == [
        ("HIGH_ATTN", 6000, 7000)]


def test_with_the_channel_layer_down_sockets_are_refused_and_one_error_is_logged(viewer, settings, caplog):
    session, videos, cookie = viewer
    # Nothing listens on port 1: every call to this layer fails, as with Redis down.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tokfeed.channel_layer.RedisChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}

    async def attempts():
        results = []
        for _ in range(3):
            tab = socket(OUR_ORIGIN, cookie)
            results.append((await tab.connect(timeout=TIMEOUT))[0])
            await tab.disconnect()
        return results

    # The outage is logged by the one health record of the layer (our loggers do not propagate
    # to the root's).
    layer_logger = logging.getLogger("tokfeed")
    layer_logger.addHandler(caplog.handler)
    try:
        assert async_to_sync(attempts)() == [False, False, False]
    finally:
        layer_logger.removeHandler(caplog.handler)
    errors = [r for r in caplog.records if r.name == "tokfeed.channel_layer" and r.levelname == "ERROR"]
    assert len(errors) == 1 and "channel layer is unreachable" in errors[0].getMessage()
    consumers.CHANNEL_LAYER_HEALTH.worked()


async def _two_viewers_the_first_holding_the_slot(cookie, other_cookie, held):
    """Two viewers' sockets, the first having sent ``held``, which takes the one slot and waits
    for its session's locked row."""
    tab, other_tab = await _connected_tabs(cookie, other_cookie)
    await tab.send_json_to(held)
    while consumers.CAPACITY.in_flight < 1:
        await asyncio.sleep(0.01)
    return tab, other_tab


def test_past_its_capacity_the_socket_refuses_and_the_resent_event_is_applied_once(viewer, settings):
    """Backpressure: with one slot, held by an event waiting on its session's lock, another
    viewer's event is refused once its wait for a slot is over (the held one is still held) with
    a retry delay; the same event resent once the slot is free is applied, and only once."""
    settings.MAX_INFLIGHT = 1
    settings.ADMISSION_WAIT_MS = 50
    # Long enough that the later event below, sent once the slot is free, still falls in the
    # refused socket's delay, however slow this shared machine is.
    settings.OVERLOAD_RETRY_AFTER_MS = 2000
    settings.FEED_LOCK_TIMEOUT_MS = 120_000
    session, videos, cookie = viewer
    other, other_cookie = _second_viewer()
    other_video = other.impressions.first().video_id
    held, refused_event, later_event = _view(videos[0]), _view(other_video), _view(other_video, watched_ms=1000)
    holder = _lock_session_row(session.pk)

    async def scenario():
        tab, other_tab = await _two_viewers_the_first_holding_the_slot(cookie, other_cookie, held)
        await other_tab.send_json_to(refused_event)
        refused = await other_tab.receive_json_from(timeout=TIMEOUT)
        still_held = await tab.receive_nothing(timeout=0.1)
        holder.rollback()  # the held work ends: its ack, and the slot is free
        held_ack = await _next_json_frame(tab)
        # Sent before the refused one came again: refused too, though a slot is free (order kept).
        await other_tab.send_json_to(later_event)
        also_refused = await _next_json_frame(other_tab)
        await asyncio.sleep(also_refused["retry_after_ms"] / 1000)  # as the client waits
        acks = []
        for event in (refused_event, later_event, refused_event):  # the outbox in order, then a late repeat
            await other_tab.send_json_to(event)
            acks.append(await _next_json_frame(other_tab))
        for t in (tab, other_tab):
            await t.disconnect()
        return refused, still_held, held_ack, also_refused, acks

    try:
        refused, still_held, held_ack, also_refused, acks = async_to_sync(scenario)()
    finally:
        holder.close()
    assert still_held  # the refusal came while the slot's work was still waiting
    for frame, event in ((refused, refused_event), (also_refused, later_event)):
        assert (frame["type"], frame["event_id"], frame["code"], frame["retry"]) == (
            "error", event["event_id"], "overloaded", True)
    assert 2000 <= refused["retry_after_ms"] < 4000
    assert 0 < also_refused["retry_after_ms"] <= refused["retry_after_ms"]  # what was left of the same delay
    assert (held_ack["type"], held_ack["signal"]) == ("ack", "HIGH_ATTN")
    assert [(a["type"], a["event_id"], a.get("duplicate")) for a in acks] == [
        ("ack", refused_event["event_id"], False), ("ack", later_event["event_id"], False),
        ("ack", refused_event["event_id"], True)]
    # Applied once each, in the order sent.
    assert list(Signal.objects.filter(session=other).order_by("id").values_list("event_id", "type")) == [
        (uuid.UUID(refused_event["event_id"]), "HIGH_ATTN"), (uuid.UUID(later_event["event_id"]), "SKIP")]
    assert consumers.CAPACITY.in_flight == 0


def test_an_event_that_finds_no_slot_free_waits_for_one_and_is_applied(viewer, settings):
    """A brief burst is a short wait, not a refusal: with one slot, held by an event waiting on
    its session's lock, another viewer's event waits (``ADMISSION_WAIT_MS``, long here) and is
    acked once that slot is given back (before: refused at once)."""
    settings.MAX_INFLIGHT = 1
    settings.ADMISSION_WAIT_MS = 120_000
    settings.FEED_LOCK_TIMEOUT_MS = 120_000
    session, videos, cookie = viewer
    other, other_cookie = _second_viewer()
    held, waiting = _view(videos[0]), _view(other.impressions.first().video_id)
    holder = _lock_session_row(session.pk)

    async def scenario():
        tab, other_tab = await _two_viewers_the_first_holding_the_slot(cookie, other_cookie, held)
        await other_tab.send_json_to(waiting)
        while not consumers.CAPACITY._waiters:
            await asyncio.sleep(0.01)
        nothing_yet = await other_tab.receive_nothing(timeout=0.1)
        holder.rollback()  # the held event is applied and acked: its slot goes to the waiting one
        held_ack, waiting_ack = await _next_json_frame(tab), await _next_json_frame(other_tab)
        for t in (tab, other_tab):
            await t.disconnect()
        return nothing_yet, held_ack, waiting_ack

    try:
        nothing_yet, held_ack, waiting_ack = async_to_sync(scenario)()
    finally:
        holder.close()
    assert nothing_yet
    assert (held_ack["type"], held_ack["event_id"]) == ("ack", held["event_id"])
    assert (waiting_ack["type"], waiting_ack["event_id"], waiting_ack["signal"]) == (
        "ack", waiting["event_id"], "HIGH_ATTN")
    assert Signal.objects.filter(session=other).count() == 1
    assert consumers.CAPACITY.in_flight == 0


def test_a_refill_holds_no_slot_and_no_acks_back_while_it_waits(viewer, settings):
    """Backpressure counts acks, not the refills they ask for: an event that asks for the next
    batch gives its slot back at its ack, and its refill is served in the background. So with one
    slot, while that refill waits for a batch thread, another viewer's view is admitted and acked
    (before: refused, the refill held the slot), and so is the same viewer's next view (before:
    queued behind the refill); its revision is skipped (a refill is under way). The batch comes
    once a thread is free."""
    settings.MAX_INFLIGHT = 1
    session, videos, cookie = viewer
    other, other_cookie = _second_viewer()
    other_video = other.impressions.first().video_id
    refill, other_view = {"type": "next", "event_id": str(uuid.uuid4()), "batch": 1}, _view(other_video)
    next_view = _view(videos[0], watched_ms=800)
    gate = threading.Event()
    busy = [consumers.BATCH_THREADS.submit(gate.wait) for _ in range(2)]  # every batch thread taken (and more)
    skipped = consumers_skipped_revisions()

    async def scenario():
        tab, other_tab = await _connected_tabs(cookie, other_cookie)
        try:
            await tab.send_json_to(refill)
            refill_ack = await tab.receive_json_from(timeout=TIMEOUT)
            await other_tab.send_json_to(other_view)  # the refill is waiting for a thread meanwhile
            other_ack = await other_tab.receive_json_from(timeout=TIMEOUT)
            await tab.send_json_to(next_view)
            next_ack = await tab.receive_json_from(timeout=TIMEOUT)
        finally:
            gate.set()
        batch = await tab.receive_from(timeout=TIMEOUT)
        for t in (tab, other_tab):
            await t.disconnect()
        return refill_ack, other_ack, next_ack, batch

    refill_ack, other_ack, next_ack, batch = async_to_sync(scenario)()
    for future in busy:
        future.result(timeout=TIMEOUT)
    assert (refill_ack["type"], refill_ack["event_id"]) == ("ack", refill["event_id"])
    assert (other_ack["type"], other_ack["event_id"], other_ack["signal"]) == (
        "ack", other_view["event_id"], "HIGH_ATTN")
    assert (next_ack["type"], next_ack["event_id"], next_ack["signal"]) == ("ack", next_view["event_id"], "SKIP")
    assert consumers_skipped_revisions() >= skipped + 2  # both views' revisions: a refill was under way
    assert batch.startswith('<div id="feed-cards" hx-swap-oob="beforeend">') and 'id="card-2-0"' in batch
    assert FeedSession.objects.get(pk=session.pk).batch_count == 2
    assert consumers.CAPACITY.in_flight == 0 and consumers.CAPACITY.follow_ups == 0


def test_a_process_builds_one_batch_at_a_time(viewer, settings):
    """Refills (and revisions) are built one at a time in a process, so a burst of them leaves
    the other cores to acks: while one viewer's refill is held up (its session's row locked by
    other work), another viewer's refill waits for it (before: two batch threads, it was built
    at once). Both are served once the first can go on, each viewer its own."""
    settings.FEED_LOCK_TIMEOUT_MS = 120_000
    session, videos, cookie = viewer
    other, other_cookie = _second_viewer()
    refill, other_refill = ({"type": "next", "event_id": str(uuid.uuid4()), "batch": 1} for _ in range(2))
    holder = _lock_session_row(session.pk)

    async def scenario():
        tab, other_tab = await _connected_tabs(cookie, other_cookie)
        try:
            await tab.send_json_to(refill)
            acks = [await tab.receive_json_from(timeout=TIMEOUT)]
            while consumers.CAPACITY.follow_ups < 1:  # its batch is being built (waiting for the lock)
                await asyncio.sleep(0.01)
            await other_tab.send_json_to(other_refill)
            acks.append(await other_tab.receive_json_from(timeout=TIMEOUT))
            other_batch_meanwhile = await other_tab.receive_nothing(timeout=1.0)
        finally:
            holder.rollback()
        batch, other_batch = await tab.receive_from(timeout=TIMEOUT), await other_tab.receive_from(timeout=TIMEOUT)
        for t in (tab, other_tab):
            await t.disconnect()
        return acks, other_batch_meanwhile, batch, other_batch

    try:
        acks, other_batch_meanwhile, batch, other_batch = async_to_sync(scenario)()
    finally:
        holder.close()
    assert [(a["type"], a["event_id"]) for a in acks] == [("ack", refill["event_id"]), ("ack", other_refill["event_id"])]
    assert other_batch_meanwhile  # the other viewer's refill waited for the one being built
    for frame, feed_session in ((batch, session), (other_batch, other)):
        assert frame.startswith('<div id="feed-cards" hx-swap-oob="beforeend">') and 'id="card-2-0"' in frame
        assert FeedSession.objects.get(pk=feed_session.pk).batch_count == 2
    assert consumers.CAPACITY.in_flight == 0 and consumers.CAPACITY.follow_ups == 0


def test_a_socket_does_not_wait_for_the_processs_thread_sensitive_thread(viewer):
    """The consumer's database work runs in its own worker threads, so its messages are not
    dispatched through the process's one thread-sensitive thread: with that thread busy (another
    part of the process's sync work), a view is still applied and acked (before: Channels sent
    every message through it first, to close old connections, and the ack waited)."""
    session, videos, cookie = viewer
    event = _view(videos[0])
    release = threading.Event()

    async def scenario():
        tab = socket(OUR_ORIGIN, cookie)
        assert (await tab.connect(timeout=TIMEOUT))[0]
        busy = asyncio.ensure_future(sync_to_async(release.wait, thread_sensitive=True)(TIMEOUT))
        try:
            await tab.send_json_to(event)
            ack = await tab.receive_json_from(timeout=5)
        finally:
            release.set()
            await busy
        await tab.disconnect()
        return ack

    ack = async_to_sync(scenario)()
    assert (ack["type"], ack["event_id"], ack["signal"]) == ("ack", event["event_id"], "HIGH_ATTN")
    assert Signal.objects.filter(session=session).count() == 1


async def _next_json_frame(tab) -> dict:
    """The next JSON frame (an ack or an error), past any HTML (revised cards, if the ranking changed)."""
    while not (frame := await tab.receive_from(timeout=TIMEOUT)).startswith("{"):
        pass
    return json.loads(frame)
