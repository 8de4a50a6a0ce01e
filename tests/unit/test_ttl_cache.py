"""tokfeed.ttl_cache: remembered for ttl seconds, then read again; forgotten on demand; bounded."""
import threading

from tokfeed.ttl_cache import TTLCache, forget_all


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Reads:
    """A compute function that counts its calls and answers the current ``value``."""

    def __init__(self, value):
        self.value, self.calls = value, 0

    def __call__(self):
        self.calls += 1
        return self.value


def test_a_value_is_read_once_within_its_ttl_and_again_after():
    clock, reads = Clock(), Reads("row v1")
    cache = TTLCache(10, clock=clock)
    assert cache.get("k", reads) == "row v1"
    reads.value = "row v2"  # changed elsewhere
    clock.now += 9.9
    assert cache.get("k", reads) == "row v1" and reads.calls == 1
    clock.now += 0.1
    assert cache.get("k", reads) == "row v2" and reads.calls == 2


def test_none_is_remembered_too():
    reads = Reads(None)
    cache = TTLCache(10, clock=Clock())
    assert cache.get("unknown key", reads) is None
    assert cache.get("unknown key", reads) is None
    assert reads.calls == 1


def test_keys_are_apart():
    cache = TTLCache(10, clock=Clock())
    assert cache.get("a", lambda: 1) == 1
    assert cache.get("b", lambda: 2) == 2
    assert cache.get("a", lambda: 3) == 1


def test_forget_and_forget_all_read_again_at_once():
    reads_a, reads_b = Reads("a"), Reads("b")
    a, b = TTLCache(10, clock=Clock()), TTLCache(10, clock=Clock())
    a.get("k", reads_a), b.get("k", reads_b)
    a.forget()
    a.get("k", reads_a), b.get("k", reads_b)
    assert (reads_a.calls, reads_b.calls) == (2, 1)
    forget_all()
    a.get("k", reads_a), b.get("k", reads_b)
    assert (reads_a.calls, reads_b.calls) == (3, 2)


def test_a_ttl_of_zero_remembers_nothing_and_the_ttl_is_read_at_each_get():
    ttl = {"s": 0}
    reads = Reads("row")
    cache = TTLCache(lambda: ttl["s"], clock=Clock())
    cache.get("k", reads), cache.get("k", reads)
    assert reads.calls == 2 and len(cache) == 0
    ttl["s"] = 10
    cache.get("k", reads), cache.get("k", reads)
    assert reads.calls == 3


def test_a_full_cache_starts_over_instead_of_growing():
    cache = TTLCache(10, max_entries=3, clock=Clock())
    for key in range(3):
        cache.get(key, lambda: "v")
    assert len(cache) == 3
    cache.get(0, lambda: "v")  # a remembered key does not count as new
    assert len(cache) == 3
    cache.get(99, lambda: "v")
    assert len(cache) == 1


def test_threads_share_one_cache():
    reads = Reads("row")
    cache = TTLCache(10)
    cache.get("k", reads)
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(cache.get("k", reads))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == ["row"] * 8 and reads.calls == 1
