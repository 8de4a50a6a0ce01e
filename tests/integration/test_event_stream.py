"""The event stream: the feed's use cases publish every applied signal and served batch once, after
commit, whatever transport carried it; subscribers (a viewer's other tabs, the live monitor) hear
of it over their websockets.

Transactional tests (the consumers' worker threads see only committed rows), driven with
``async_to_sync`` as in ``test_consumer.py``, on the in-memory and the Redis channel layer.
"""
import logging
import uuid

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client

from feed import services
from feed.models import Signal
from feed.selectors import FEED_SESSION_KEY
from tests.conftest import partner_client, wait_for_other_connections_to_close
from tests.integration.test_consumer import OUR_ORIGIN, REDIS_URL, TIMEOUT, socket
from tokfeed.asgi import application
from tokfeed.channel_layer import CHANNEL_LAYER_HEALTH


@pytest.fixture
def channel_layer(request, settings):
    """The in-memory layer, or Redis (``indirect`` parametrisation names which)."""
    if getattr(request, "param", "in-memory") == "redis":
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


@pytest.fixture
def threads_close_their_connections(small_catalog, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    yield
    wait_for_other_connections_to_close("the consumers")


def cookie_of(store: SessionStore) -> tuple[bytes, bytes]:
    return (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={store.session_key}".encode())


def staff_cookie() -> tuple[bytes, bytes]:
    """The session cookie of a logged-in staff user (the admin's login)."""
    client = Client()
    client.force_login(get_user_model().objects.create_user("operator", password="x", is_staff=True))
    return (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode())


async def close_layer():
    layer = get_channel_layer()
    if hasattr(layer, "close_pools"):
        await layer.close_pools()


@pytest.mark.parametrize("channel_layer", ["in-memory", "redis"], indirect=True)
def test_a_signal_posted_through_the_partner_api_reaches_the_monitor_socket(threads_close_their_connections,
                                                                            channel_layer):
    api = partner_client("partner-a")
    session_id = api.post("/api/v1/sessions/", {"algorithm": "seed-default"}, format="json").json()["id"]
    video = api.post(f"/api/v1/sessions/{session_id}/batch/").json()["items"][0]["id"]
    event_id = str(uuid.uuid4())
    operator = staff_cookie()

    def post_signal():
        return api.post(f"/api/v1/sessions/{session_id}/signals/",
                        {"video": video, "event_id": event_id, "watched_ms": 16000}, format="json").json()

    async def scenario():
        monitor = WebsocketCommunicator(application, "/ws/admin/monitor/", headers=[OUR_ORIGIN, operator])
        assert (await monitor.connect(timeout=TIMEOUT))[0]
        outcome = await sync_to_async(post_signal)()
        row = await monitor.receive_from(timeout=TIMEOUT)
        # Sent again (a partner's retry): acknowledged as a duplicate, published nothing.
        again = await sync_to_async(post_signal)()
        nothing_more = await monitor.receive_nothing(timeout=0.5)
        await monitor.disconnect()
        await close_layer()
        return outcome, row, again, nothing_more

    outcome, row, again, nothing_more = async_to_sync(scenario)()
    assert outcome == {"signal": "HIGH_ATTN", "state": "H", "duplicate": False}
    assert row.startswith('<tbody id="monitor-events" hx-swap-oob="afterbegin">')
    assert "HIGH_ATTN on video %d after 16000 ms: L → H" % video in row
    assert f"/admin/feed/feedsession/{session_id}/change/" in row
    assert again["duplicate"] is True and nothing_more
    assert Signal.objects.filter(session_id=session_id).count() == 1


def test_the_monitor_socket_is_for_staff_only(threads_close_their_connections, channel_layer):
    client = Client()
    client.force_login(get_user_model().objects.create_user("viewer", password="x"))
    not_staff = (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={client.cookies[django_settings.SESSION_COOKIE_NAME].value}".encode())

    async def connect(*headers):
        monitor = WebsocketCommunicator(application, "/ws/admin/monitor/", headers=[OUR_ORIGIN, *headers])
        connected, _ = await monitor.connect(timeout=TIMEOUT)
        await monitor.disconnect()
        return connected

    assert async_to_sync(connect)() is False
    assert async_to_sync(connect)(not_staff) is False
    assert async_to_sync(connect)(staff_cookie()) is True


def test_a_view_posted_over_http_reaches_the_viewers_other_tab_once(threads_close_their_connections, channel_layer):
    session = services.start_session(algorithm="seed-default", session_id=uuid.UUID(int=20261203))
    videos = [item.video.pk for item in services.next_batch(session.id).items]
    store = SessionStore()
    store[FEED_SESSION_KEY] = str(session.id)
    store.create()
    http_tab = Client()
    http_tab.cookies[django_settings.SESSION_COOKIE_NAME] = store.session_key
    view = {"type": "view", "event_id": str(uuid.uuid4()), "video": videos[0], "watched_ms": 16000,
            "duration_ms": 20000}

    def post(event):
        return http_tab.post("/feed/events/", event, content_type="application/json").json()

    async def scenario():
        socket_tab = socket(OUR_ORIGIN, cookie_of(store))
        assert (await socket_tab.connect(timeout=TIMEOUT))[0]
        ack = await sync_to_async(post)(view)
        state = await socket_tab.receive_json_from(timeout=TIMEOUT)
        duplicate = await sync_to_async(post)(view)  # resent: changes nothing, tells nobody
        nothing_more = await socket_tab.receive_nothing(timeout=0.5)
        # A batch served over HTTP moves the state along its BATCH edge: the socket's tab hears it.
        await sync_to_async(http_tab.post)("/feed/batch/", {"after": "1"})
        after_batch = await socket_tab.receive_json_from(timeout=TIMEOUT)
        await socket_tab.disconnect()
        return ack, state, duplicate, nothing_more, after_batch

    ack, state, duplicate, nothing_more, after_batch = async_to_sync(scenario)()
    assert (ack["signal"], ack["state"], ack["duplicate"]) == ("HIGH_ATTN", "H", False)
    assert state == {"type": "state", "state": "H", "signal": "HIGH_ATTN"}
    assert duplicate["duplicate"] is True and nothing_more
    assert after_batch == {"type": "state", "state": "M", "signal": None}


def test_a_socket_is_not_told_of_its_own_signals_and_batches(threads_close_their_connections, channel_layer):
    session = services.start_session(algorithm="seed-default", session_id=uuid.UUID(int=20261204))
    videos = [item.video.pk for item in services.next_batch(session.id).items]
    store = SessionStore()
    store[FEED_SESSION_KEY] = str(session.id)
    store.create()
    view = {"type": "view", "event_id": str(uuid.uuid4()), "video": videos[1], "watched_ms": 16000,
            "remaining": 2, "batch": 1}

    async def scenario():
        tab = socket(OUR_ORIGIN, cookie_of(store))
        assert (await tab.connect(timeout=TIMEOUT))[0]
        await tab.send_json_to(view)
        frames = [await tab.receive_from(timeout=TIMEOUT)]
        while not frames[-1].startswith('<div id="feed-cards"'):  # ack, revision, then the batch
            frames.append(await tab.receive_from(timeout=TIMEOUT))
        nothing_more = await tab.receive_nothing(timeout=0.5)
        await tab.disconnect()
        return frames, nothing_more

    frames, nothing_more = async_to_sync(scenario)()
    assert '"type":"ack"' in frames[0]
    assert not any('"type":"state"' in frame for frame in frames) and nothing_more


def test_with_the_channel_layer_down_the_use_cases_commit_and_one_error_is_logged(
        catalog_db, settings, caplog, django_capture_on_commit_callbacks):
    # Nothing listens on port 1: every send fails, as with Redis down.
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "tokfeed.channel_layer.RedisChannelLayer",
                                           "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}}
    layer_logger = logging.getLogger("tokfeed")  # our loggers do not propagate to the root's
    layer_logger.addHandler(caplog.handler)
    try:
        session = services.start_session(algorithm="seed-default")
        with django_capture_on_commit_callbacks(execute=True) as published:
            batch = services.next_batch(session.id)
            outcomes = [services.record_view(session.id, video_id=item.video.pk, event_id=uuid.uuid4(),
                                             watched_ms=16000) for item in batch.items[:2]]
    finally:
        layer_logger.removeHandler(caplog.handler)
        CHANNEL_LAYER_HEALTH.worked()
    # A batch and two signals: one commit hook each, which publishes to the session and to the
    # monitor in one crossing to the event loop and then counts it (metrics).
    assert len(published) == 3
    assert [o.signal for o in outcomes] == ["HIGH_ATTN", "HIGH_ATTN"]
    assert Signal.objects.filter(session=session).count() == 2
    errors = [r for r in caplog.records if r.name == "tokfeed.channel_layer" and r.levelname == "ERROR"]
    assert len(errors) == 1 and "channel layer is unreachable" in errors[0].getMessage()


def test_each_applied_signal_is_published_once_after_commit_and_a_duplicate_never(
        catalog_db, django_capture_on_commit_callbacks):
    session = services.start_session(algorithm="seed-default")
    video = services.next_batch(session.id).items[0].video.pk
    event_id = uuid.uuid4()
    with django_capture_on_commit_callbacks() as first:
        services.record_view(session.id, video_id=video, event_id=event_id, watched_ms=16000)
    with django_capture_on_commit_callbacks() as resent:
        assert services.record_view(session.id, video_id=video, event_id=event_id, watched_ms=16000).duplicate
    with django_capture_on_commit_callbacks() as refused:
        with pytest.raises(services.FeedError):
            services.record_action(session.id, video_id=video, event_id=uuid.uuid4(), signal_type="NO_SUCH_TYPE")
    assert len(first) == 1 and resent == [] and refused == []  # to the session and the monitor, then the metrics


def test_an_undo_is_published_once_after_commit_like_any_applied_signal(
        catalog_db, django_capture_on_commit_callbacks):
    session = services.start_session(algorithm="seed-default")
    video = services.next_batch(session.id).items[0].video.pk
    like = uuid.uuid4()
    services.record_action(session.id, video_id=video, event_id=like, signal_type="LIKE")
    undo = uuid.uuid4()
    with django_capture_on_commit_callbacks() as applied:
        services.undo_action(session.id, event_id=undo, undoes=like)
    with django_capture_on_commit_callbacks() as resent:
        assert services.undo_action(session.id, event_id=undo, undoes=like).duplicate
    assert len(applied) == 1 and resent == []


def test_the_monitor_and_the_viewer_s_other_tabs_hear_of_an_undo(catalog_db, monkeypatch):
    sent = []
    monkeypatch.setattr(services, "publish_on_commit", lambda messages, then=None: sent.extend(messages))
    session = services.start_session(algorithm="seed-default")
    video = services.next_batch(session.id).items[0].video.pk
    like, undo = uuid.uuid4(), uuid.uuid4()
    services.record_action(session.id, video_id=video, event_id=like, signal_type="LIKE")
    sent.clear()
    services.undo_action(session.id, event_id=undo, undoes=like)
    frames = {event["type"]: event for _, event in sent}
    assert set(frames) == {"feed.state", "monitor.event"}
    assert frames["feed.state"]["signal"] == "UNDO" and frames["feed.state"]["event_id"] == str(undo)
    assert frames["monitor.event"]["signal"] == "UNDO" and frames["monitor.event"]["undoes"] == str(like)
    assert frames["monitor.event"]["video"] == video
