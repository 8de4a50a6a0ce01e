"""tokfeed.asgi.OneThreadASGIHandler: a request's thread is reused by later requests, one thread
per request in flight, and the thread of an abandoned request (the client went away while its
view may still run) is not reused; a request is one hop to its thread."""
import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from django.core.signals import request_finished, request_started
from django.http import StreamingHttpResponse
from django.urls import path

from tokfeed.asgi import django_asgi_app

PATH = "/api/v1/no-such-endpoint/"  # answered by the chain (404 in the error shape), no database


async def request(path: str = PATH, *, client_leaves: bool = False, on_send=None):
    messages = [{"type": "http.request", "body": b"", "more_body": False}]
    status = {}

    async def receive():
        if messages:
            return messages.pop()
        if client_leaves:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)

    async def send(message):
        if on_send:
            on_send(message)
        if message["type"] == "http.response.start":
            status["code"] = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "server": ("testserver", 80), "client": ("127.0.0.1", 5000), "headers": [(b"host", b"testserver")]}
    await django_asgi_app(scope, receive, send)
    return status.get("code")


def test_threads_are_reused_one_per_request_in_flight_and_an_abandoned_one_is_not():
    async def scenario():
        idle = django_asgi_app._idle_threads
        idle.clear()
        assert [await request() for _ in range(5)] == [404] * 5
        assert len(idle) == 1  # one after another: one thread
        assert await asyncio.gather(*(request() for _ in range(4))) == [404] * 4
        assert len(idle) == 4  # four at once: four threads, all kept
        await request(client_leaves=True)
        assert len(idle) == 3  # the abandoned request's thread is not given to the next

    asyncio.run(scenario())


class CountingThread(ThreadPoolExecutor):
    """A request thread that counts the calls handed to it (each a hop from the event loop)."""

    def __init__(self):
        super().__init__(max_workers=1, thread_name_prefix="request")
        self.hops = 0

    def submit(self, *args, **kwargs):
        self.hops += 1
        return super().submit(*args, **kwargs)


def test_a_request_is_one_hop_to_its_thread_whose_connection_is_given_back_before_the_answer_is_sent():
    """The request's signals, chain and view, and a made response's close (``request_finished``:
    its database connection back in the pool) run on its thread in one hop, before it is sent."""
    events = []

    def started(**kwargs):
        events.append(("request_started", threading.get_ident()))

    def finished(**kwargs):
        events.append(("request_finished", threading.get_ident()))

    async def scenario():
        thread = CountingThread()
        django_asgi_app._idle_threads[:] = [thread]
        request_started.connect(started)
        request_finished.connect(finished)
        try:
            assert await request(on_send=lambda message: events.append((message["type"], threading.get_ident())))
        finally:
            request_started.disconnect(started)
            request_finished.disconnect(finished)
        return thread

    thread = asyncio.run(scenario())
    assert thread.hops == 1
    assert [name for name, _ in events] == ["request_started", "request_finished", "http.response.start",
                                             "http.response.body"]
    assert events[0][1] == events[1][1] != events[2][1]  # on the request's thread, not the loop's


async def parts():
    yield b"one "
    yield b"two"


def stream(request):
    return StreamingHttpResponse(parts())


urlpatterns = [path("stream/", stream)]


def test_a_streaming_response_is_closed_once_its_content_is_sent(settings):
    settings.ROOT_URLCONF = __name__
    events = []

    def finished(**kwargs):
        events.append("request_finished")

    async def scenario():
        request_finished.connect(finished)
        try:
            return await request("/stream/", on_send=lambda message: events.append(message["type"]))
        finally:
            request_finished.disconnect(finished)

    assert asyncio.run(scenario()) == 200
    assert events[-2:] == ["http.response.body", "request_finished"]
