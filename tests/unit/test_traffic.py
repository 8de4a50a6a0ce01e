"""The traffic split as plain functions: validation, the hash draw, stickiness."""
import uuid
from collections import Counter

import numpy as np
import pytest

from algorithms import traffic


@pytest.mark.parametrize("shares", [[(1, 0), (2, 0)], [(1, 100)], [(1, 30), (2, 70)], [(1, 33), (2, 33), (3, 34)]])
def test_shares_that_sum_to_100_or_are_all_zero_are_accepted(shares):
    traffic.check_shares(shares)


@pytest.mark.parametrize("shares, message", [
    ([(1, 30), (2, 60)], "sum to 90 %"),
    ([(1, 80), (2, 80)], "sum to 160 %"),
    ([("evidence", 101), ("seed", 0)], "share of evidence is 101 %"),
    ([("evidence", -1), ("seed", 101)], "share of evidence is -1 %"),
])
def test_other_shares_are_refused_with_what_is_wrong(shares, message):
    with pytest.raises(traffic.InvalidSplit, match=message):
        traffic.check_shares(shares)


def test_all_zero_sends_everyone_to_the_default():
    assert {traffic.draw(uuid.uuid4(), [(1, 0), (2, 0), (3, 0)], default=2) for _ in range(50)} == {2}


def test_the_draw_is_a_function_of_the_session_id_whatever_the_order_of_the_shares():
    session = uuid.UUID(int=12345)
    first = traffic.draw(session, [(1, 50), (2, 50)], default=1)
    assert all(traffic.draw(session, [(2, 50), (1, 50)], default=1) == first for _ in range(10))


def test_ten_thousand_seeded_sessions_land_within_a_point_of_the_shares():
    rng = np.random.default_rng(0)
    ids = [uuid.UUID(int=int.from_bytes(rng.bytes(16), "big")) for _ in range(10_000)]
    counts = Counter(traffic.draw(i, [(1, 20), (2, 30), (3, 50)], default=1) for i in ids)
    assert abs(counts[1] / 100 - 20) < 1.5
    assert abs(counts[2] / 100 - 30) < 1.5
    assert abs(counts[3] / 100 - 50) < 1.5


def test_a_share_of_100_takes_every_session():
    assert {traffic.draw(uuid.uuid4(), [(1, 0), (7, 100)], default=1) for _ in range(50)} == {7}


def test_the_sticky_algorithm_is_kept_while_it_has_a_share_else_redrawn():
    shares = [(1, 50), (2, 50)]
    for n in range(50):
        assert traffic.assign(uuid.UUID(int=n), shares, default=1, sticky=2) == 2
    gone = [(1, 100), (2, 0)]
    assert {traffic.assign(uuid.UUID(int=n), gone, default=1, sticky=2) for n in range(50)} == {1}


def test_with_no_split_only_the_default_is_sticky():
    no_split = [(1, 0), (2, 0)]
    assert traffic.assign(uuid.uuid4(), no_split, default=1, sticky=1) == 1
    assert traffic.assign(uuid.uuid4(), no_split, default=1, sticky=2) == 1
