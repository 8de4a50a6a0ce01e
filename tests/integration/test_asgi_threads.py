"""tokfeed.asgi.OneThreadASGIHandler: a request's thread is reused by later requests, one thread
per request in flight, and the thread of an abandoned request (the client went away while its
view may still run) is not reused."""
import asyncio

from tokfeed.asgi import django_asgi_app

PATH = "/api/v1/no-such-endpoint/"  # answered by the chain (404 in the error shape), no database


async def request(path: str = PATH, *, client_leaves: bool = False):
    messages = [{"type": "http.request", "body": b"", "more_body": False}]
    status = {}

    async def receive():
        if messages:
            return messages.pop()
        if client_leaves:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)

    async def send(message):
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
