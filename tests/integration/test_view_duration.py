"""A view's duration: stored with its signal, judged by watch-ratio thresholds, validated on every
transport (the partner API, the feed's HTTP fallback; the websocket is in test_consumer.py)."""
import copy
import uuid

import pytest

from algorithms.blueprints import SEED_BLUEPRINT
from algorithms.services import save_blueprint
from catalog.models import Video
from feed import services
from feed.models import Signal
from feed.selectors import FEED_SESSION_KEY
from feed.services import MAX_WATCHED_MS

RATIOS = {"high_ratio": 0.8, "mid_ratio": 0.5, "low_ratio": 0.3}


@pytest.fixture
def ratio_algorithm(catalog_db):
    """The seed algorithm with watch-ratio thresholds (0.8, 0.5, 0.3) next to its 15/12/9 s."""
    data = copy.deepcopy(SEED_BLUEPRINT)
    data["tokfeed"]["thresholds"].update(RATIOS)
    return save_blueprint(data, slug="seed-ratios")


def start(client, **body):
    response = client.post("/api/v1/sessions/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def served_videos(client, session) -> list[int]:
    response = client.post(f"/api/v1/sessions/{session}/batch/")
    assert response.status_code == 200, response.json()
    return [item["id"] for item in response.json()["items"]]


def signal(client, session, **body):
    body.setdefault("event_id", str(uuid.uuid4()))
    return client.post(f"/api/v1/sessions/{session}/signals/", body, format="json")


def stored(event_id) -> tuple:
    return Signal.objects.filter(event_id=event_id).values_list("type", "watched_ms", "duration_ms").get()


def test_a_view_of_most_of_a_short_video_is_high_attention_with_ratios(ratio_algorithm, api_client):
    assert ratio_algorithm.thresholds.relative
    session = start(api_client, algorithm="seed-ratios")
    video = served_videos(api_client, session)[0]
    event_id = str(uuid.uuid4())

    response = signal(api_client, session, video=video, event_id=event_id, watched_ms=6000, duration_ms=7000)

    assert response.status_code == 200, response.json()
    assert response.json() == {"signal": "HIGH_ATTN", "state": "H", "duplicate": False}
    assert stored(event_id) == ("HIGH_ATTN", 6000, 7000)


def test_the_seed_algorithm_judges_the_same_view_by_ms_alone_and_stores_its_duration(catalog_db, api_client):
    session = start(api_client, algorithm="seed-default")
    video = served_videos(api_client, session)[0]
    event_id = str(uuid.uuid4())
    response = signal(api_client, session, video=video, event_id=event_id, watched_ms=6000, duration_ms=7000)
    assert response.json()["signal"] == "SKIP"
    assert stored(event_id) == ("SKIP", 6000, 7000)


def test_without_duration_ms_the_catalogs_duration_is_used(ratio_algorithm, api_client):
    session = start(api_client, algorithm="seed-ratios")
    short, unknown = served_videos(api_client, session)[:2]
    Video.objects.filter(pk=short).update(duration_s=7)
    Video.objects.filter(pk=unknown).update(duration_s=0)  # 0: the catalog does not know

    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert signal(api_client, session, video=short, event_id=first, watched_ms=6000).json()["signal"] == "HIGH_ATTN"
    assert stored(first) == ("HIGH_ATTN", 6000, 7000)
    # No duration anywhere: the ms thresholds alone.
    assert signal(api_client, session, video=unknown, event_id=second, watched_ms=6000).json()["signal"] == "SKIP"
    assert stored(second) == ("SKIP", 6000, None)


def test_the_clients_duration_wins_over_the_catalogs(ratio_algorithm, api_client):
    session = start(api_client, algorithm="seed-ratios")
    video = served_videos(api_client, session)[0]
    Video.objects.filter(pk=video).update(duration_s=7)
    event_id = str(uuid.uuid4())
    # 6 s of the 60 s the client played is a skip, whatever the catalog says.
    assert signal(api_client, session, video=video, event_id=event_id, watched_ms=6000,
                  duration_ms=60000).json()["signal"] == "SKIP"
    assert stored(event_id) == ("SKIP", 6000, 60000)


@pytest.mark.parametrize("duration_ms", [0, -1, 1.5, "7000", True, None, MAX_WATCHED_MS + 1])
def test_a_bad_duration_is_refused_naming_the_field(catalog_db, api_client, duration_ms):
    session = start(api_client)
    video = served_videos(api_client, session)[0]
    response = signal(api_client, session, video=video, watched_ms=6000, duration_ms=duration_ms)
    assert response.status_code == 400, response.json()
    body = response.json()
    assert set(body) == {"error", "field", "code", "details"} and body["error"]
    assert body["field"] == "duration_ms" and body["code"] in ("invalid", "min_value", "max_value", "null")
    assert not Signal.objects.filter(session_id=session).exists()


def test_a_duration_goes_with_a_view_only(catalog_db, api_client):
    session = start(api_client)
    video = served_videos(api_client, session)[0]
    response = signal(api_client, session, video=video, type="LIKE", duration_ms=7000)
    assert response.status_code == 400
    assert response.json()["field"] == "duration_ms"
    assert not Signal.objects.filter(session_id=session).exists()


@pytest.mark.parametrize("duration_ms", [0, -5, 7000.0, "7000", False, MAX_WATCHED_MS + 1])
def test_the_service_refuses_a_bad_duration(catalog_db, duration_ms):
    session = services.start_session()
    video = services.next_batch(session.id).items[0].video.pk
    with pytest.raises(services.FeedError) as error:
        services.record_view(session.id, video_id=video, event_id=uuid.uuid4(), watched_ms=6000,
                             duration_ms=duration_ms)
    assert error.value.field == "duration_ms"
    assert "duration_ms must be a whole number of milliseconds from 1 to" in error.value.message
    assert not Signal.objects.filter(session=session).exists()


def test_the_http_fallback_passes_the_duration_through(ratio_algorithm, client):
    page = client.get("/?algorithm=seed-ratios")
    assert page.status_code == 200
    session_id = client.session[FEED_SESSION_KEY]
    videos = list(Video.objects.filter(impressions__session_id=session_id).values_list("pk", flat=True)[:2])
    Video.objects.filter(pk=videos[1]).update(duration_s=7)
    token = client.cookies["csrftoken"].value

    def post(**event):
        event = {"type": "view", "event_id": str(uuid.uuid4()), **event}
        response = client.post("/feed/events/", event, content_type="application/json", headers={"X-CSRFToken": token})
        return event["event_id"], response

    event_id, response = post(video=videos[0], watched_ms=6000, duration_ms=7000)
    assert response.status_code == 200 and response.json()["signal"] == "HIGH_ATTN"
    assert stored(event_id) == ("HIGH_ATTN", 6000, 7000)
    # The feed's client sends 0 when it does not know the length: the catalog's is used.
    event_id, response = post(video=videos[1], watched_ms=6000, duration_ms=0)
    assert response.status_code == 200 and response.json()["signal"] == "HIGH_ATTN"
    assert stored(event_id) == ("HIGH_ATTN", 6000, 7000)

    for bad in (-1, "7000", 1.5, MAX_WATCHED_MS + 1):
        event_id, response = post(video=videos[0], watched_ms=6000, duration_ms=bad)
        assert response.status_code == 400, response.json()
        frame = response.json()
        assert (frame["type"], frame["event_id"], frame["field"], frame["retry"]) == (
            "error", event_id, "duration_ms", False)
        assert not Signal.objects.filter(event_id=event_id).exists()
