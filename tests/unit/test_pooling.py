"""Creator and interest pooling (catalog.documents), on hand-made vectors: no database, no model."""
import numpy as np
import pytest

from catalog.documents import (
    INTEREST_RECENT, THIN_INTEREST, creator_document_hash, mean_pool, pool_interest, recency_weights,
)

DAY = 86400.0


def e(i, dim=4):
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def test_without_a_half_life_every_post_weighs_alike():
    assert recency_weights([0.0, None, 5 * DAY], None).tolist() == [1.0, 1.0, 1.0]


def test_a_post_one_half_life_older_than_the_newest_weighs_half():
    weights = recency_weights([10 * DAY, 3 * DAY, None, 10 * DAY - 14 * DAY], half_life_days=7)
    # Newest 1; 7 days older 0.5; unknown as the oldest known (14 days older) 0.25.
    assert weights == pytest.approx([1.0, 0.5, 0.25, 0.25])


def test_a_half_life_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        recency_weights([0.0, DAY], 0)


def test_weighted_mean_pool_leans_to_the_heavy_vectors():
    equal = mean_pool([e(0), e(1)])
    assert equal == pytest.approx(np.array([1, 1, 0, 0]) / np.sqrt(2))
    leaning = mean_pool([e(0), e(1)], weights=[1.0, 0.25])
    assert leaning[0] > leaning[1] > 0 and np.linalg.norm(leaning) == pytest.approx(1.0)
    assert mean_pool([]) is None and mean_pool([e(0), -e(0)]) is None


def test_the_decay_is_part_of_a_creator_vectors_fingerprint():
    plain = creator_document_hash("bio", ["a", "b"])
    assert plain == creator_document_hash("bio", ["a", "b"], None, [1.0, 2.0])
    assert plain != creator_document_hash("bio", ["a", "b"], 7.0, [1.0, 2.0])
    assert creator_document_hash("bio", ["a"], 7.0, [1.0]) != creator_document_hash("bio", ["a"], 14.0, [1.0])


def test_an_interest_counts_what_it_pools_and_says_when_it_is_thin():
    thin = pool_interest([e(0), e(0), e(1)])
    assert thin.count == 3 and thin.thin
    assert thin.vector == pytest.approx(mean_pool([e(0), e(0), e(1)]))

    many = pool_interest([e(2)] * INTEREST_RECENT + [e(3)] * 50)  # newest first: only the last 100 count
    assert many.count == INTEREST_RECENT and not many.thin
    assert many.vector == pytest.approx(e(2))
    assert pool_interest([e(1)] * THIN_INTEREST).thin is False
    assert pool_interest([]).vector is None and pool_interest([]).count == 0
