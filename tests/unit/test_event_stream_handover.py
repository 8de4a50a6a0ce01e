"""tokfeed.event_stream from a server's worker thread: the use case hands its messages to the
event loop and goes on (an ack never waits for Redis); the loop sends them in the order handed."""
import asyncio

from asgiref.sync import async_to_sync, sync_to_async

from tokfeed import event_stream


class SlowLayer:
    """A channel layer whose sends wait until the test lets them through."""

    def __init__(self):
        self.sent = []
        self.open = asyncio.Event()

    async def group_send(self, group, message):
        await self.open.wait()
        self.sent.append((group, message["n"]))


def test_a_worker_thread_hands_its_messages_over_and_the_loop_sends_them_in_order(monkeypatch):
    layer = SlowLayer()
    monkeypatch.setattr(event_stream, "get_channel_layer", lambda: layer)

    def use_case(n):
        return event_stream.publish_now([("session", {"n": n}), ("monitor", {"n": n})])

    async def scenario():
        returned = [await sync_to_async(use_case, thread_sensitive=False)(n) for n in (1, 2, 3)]
        nothing_sent_yet = list(layer.sent)  # every call returned while the layer still held its sends
        layer.open.set()
        for _ in range(100):
            if len(layer.sent) == 6:
                break
            await asyncio.sleep(0.01)
        return returned, nothing_sent_yet

    returned, nothing_sent_yet = async_to_sync(scenario)()
    assert returned == [True, True, True] and nothing_sent_yet == []
    assert layer.sent == [("session", 1), ("monitor", 1), ("session", 2), ("monitor", 2), ("session", 3),
                          ("monitor", 3)]


def test_outside_a_server_the_messages_are_sent_before_the_call_returns(monkeypatch):
    layer = SlowLayer()
    layer.open.set()
    monkeypatch.setattr(event_stream, "get_channel_layer", lambda: layer)
    assert event_stream.publish_now([("session", {"n": 1})])
    assert layer.sent == [("session", 1)]
