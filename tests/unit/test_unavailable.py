"""A request that gets no database connection in time is told to come back (503), not a 500."""
from django.db import OperationalError
from django.test import RequestFactory
from prometheus_client import REGISTRY
from psycopg_pool import PoolTimeout

from tokfeed.unavailable import PoolExhaustedMiddleware


def _raised_by_django(cause):
    try:
        try:
            raise cause
        except Exception as exc:
            raise OperationalError(str(exc)) from exc
    except OperationalError as wrapped:
        return wrapped


def test_an_exhausted_pool_is_answered_503_with_retry_after():
    middleware = PoolExhaustedMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get("/api/v1/videos/"),
                                            _raised_by_django(PoolTimeout("couldn't get a connection after 10 sec")))
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert b'"code": "unavailable"' in response.content


def test_other_database_errors_are_left_alone():
    middleware = PoolExhaustedMiddleware(lambda request: None)
    assert middleware.process_exception(RequestFactory().get("/"), OperationalError("server closed the connection")) is None


def test_past_capacity_a_request_is_refused_at_once_and_a_slot_is_given_back_after_each(settings):
    from tokfeed.capacity import CAPACITY
    from tokfeed.unavailable import CapacityMiddleware

    settings.MAX_INFLIGHT = 2
    settings.OVERLOAD_RETRY_AFTER_MS = 1500
    seen = []
    middleware = CapacityMiddleware(lambda request: seen.append(CAPACITY.in_flight) or "served")
    request = RequestFactory().post("/feed/events/")
    refused_before = REGISTRY.get_sample_value("tokfeed_overloaded_total", {"transport": "http"}) or 0
    assert middleware(request) == "served" and seen == [1] and CAPACITY.in_flight == 0
    with CAPACITY.slot("test"), CAPACITY.slot("test"):
        refused = middleware(request)
        assert middleware(RequestFactory().get("/healthz")) == "served"  # not admission-controlled
    assert refused.status_code == 503 and refused["Retry-After"] in ("2", "3")  # 1.5-3 s, rounded up
    assert b'"code": "overloaded"' in refused.content
    assert CAPACITY.in_flight == 0
    assert REGISTRY.get_sample_value("tokfeed_overloaded_total", {"transport": "http"}) == refused_before + 1

    settings.MAX_INFLIGHT = 0  # no limit
    with CAPACITY.slot("test"), CAPACITY.slot("test"), CAPACITY.slot("test"):
        assert middleware(request) == "served"


def test_a_failing_request_gives_its_slot_back(settings):
    from tokfeed.capacity import CAPACITY
    from tokfeed.unavailable import CapacityMiddleware

    settings.MAX_INFLIGHT = 1

    def fails(request):
        raise RuntimeError("boom")

    try:
        CapacityMiddleware(fails)(RequestFactory().post("/api/v1/videos/"))
    except RuntimeError:
        pass
    assert CAPACITY.in_flight == 0


def test_the_retry_delay_doubles_with_each_refusal_in_a_row_up_to_a_cap(settings):
    from tokfeed.capacity import MAX_DOUBLINGS, retry_after_ms

    settings.OVERLOAD_RETRY_AFTER_MS = 500
    for refused_before, low in ((0, 500), (1, 1000), (2, 2000), (MAX_DOUBLINGS + 5, 500 * 2 ** MAX_DOUBLINGS)):
        assert all(low <= retry_after_ms(refused_before) <= 2 * low for _ in range(50)), refused_before


def test_optional_work_gets_a_slot_only_when_nothing_else_is_in_flight(settings):
    from tokfeed.capacity import CAPACITY

    settings.MAX_INFLIGHT = 8
    skipped = REGISTRY.get_sample_value("tokfeed_optional_work_skipped_total", {"work": "test"}) or 0
    assert CAPACITY.try_acquire_idle("test")  # idle: it runs, holding a slot
    assert not CAPACITY.try_acquire_idle("test")  # another optional unit in flight: skipped
    CAPACITY.release()
    with CAPACITY.slot("test"):
        assert not CAPACITY.try_acquire_idle("test")  # another's work in flight: skipped, never waited for
        assert CAPACITY.try_acquire_idle("test", held=1)  # the caller's own slot does not count
        CAPACITY.release()
    assert CAPACITY.in_flight == 0
    assert REGISTRY.get_sample_value("tokfeed_optional_work_skipped_total", {"work": "test"}) == skipped + 2

    settings.MAX_INFLIGHT = 0  # backpressure off: optional work always runs
    with CAPACITY.slot("test"):
        assert CAPACITY.try_acquire_idle("test")
        CAPACITY.release()


def test_a_follow_up_takes_no_slot_and_is_never_refused_but_optional_work_waits_for_it(settings):
    from tokfeed.capacity import CAPACITY

    settings.MAX_INFLIGHT = 1
    with CAPACITY.slot("test"):
        CAPACITY.start_follow_up()  # the refill of the event that holds the slot
    assert CAPACITY.in_flight == 0 and CAPACITY.try_acquire()  # another event is admitted meanwhile
    CAPACITY.release()
    assert not CAPACITY.try_acquire_idle("test")  # not idle: a follow-up is under way
    CAPACITY.end_follow_up()
    assert CAPACITY.try_acquire_idle("test")
    CAPACITY.release()
    assert CAPACITY.in_flight == 0 and CAPACITY.follow_ups == 0


def test_an_event_waits_for_a_slot_given_back_first_come_first_served_else_is_refused(settings):
    import asyncio
    import contextlib

    from tokfeed.capacity import CAPACITY

    settings.MAX_INFLIGHT = 1

    async def scenario():
        assert await CAPACITY.acquire_within(0)  # free: taken at once
        assert not await CAPACITY.acquire_within(0.01)  # none given back within the wait: refused
        first = asyncio.create_task(CAPACITY.acquire_within(60))
        second = asyncio.create_task(CAPACITY.acquire_within(60))
        while len(CAPACITY._waiters) < 2:
            await asyncio.sleep(0)
        assert not CAPACITY.try_acquire()  # a request does not jump the queue
        CAPACITY.release()  # handed to the first waiting, not freed
        assert await first and not second.done() and CAPACITY.in_flight == 1
        CAPACITY.release()
        assert await second and CAPACITY.in_flight == 1
        # A waiter that goes away just after it was handed the slot passes it on.
        gone = asyncio.create_task(CAPACITY.acquire_within(60))
        while not CAPACITY._waiters:
            await asyncio.sleep(0)
        CAPACITY.release()
        await asyncio.sleep(0)  # the slot is handed over, the waiter not yet resumed
        gone.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gone
        assert CAPACITY.in_flight == 0

    asyncio.run(scenario())
    assert CAPACITY.in_flight == 0 and not CAPACITY._waiters
