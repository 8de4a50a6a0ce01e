"""Vector maths on small hand-made vectors."""
import numpy as np
import pytest

from algorithms.vectors import (
    WeightedSignal,
    add_noise,
    interest_vectors,
    kmeans,
    mmr,
    normalize,
    normalize_rows,
    user_vector,
)

DIM = 8


def e(i, dim=DIM):
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v


def sig(vector, weight=1.0, polarity=1, age=0):
    return WeightedSignal(np.asarray(vector, dtype=np.float32), weight, polarity, age)


def test_normalize_gives_unit_float32_and_keeps_zero():
    v = normalize([3.0, 4.0])
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, [0.6, 0.8], rtol=1e-6)
    zero = normalize(np.zeros(4))
    assert not np.isnan(zero).any() and not zero.any()


def test_normalize_rows_keeps_zero_rows():
    m = normalize_rows([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(m, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert m.dtype == np.float32


def test_user_vector_is_the_weighted_sum():
    u = user_vector([sig(e(0), weight=3), sig(e(1), weight=1)], last_n=5)
    np.testing.assert_allclose(u, normalize(3 * e(0) + e(1)), rtol=1e-6)
    assert u[0] == pytest.approx(3 * u[1])


def test_user_vector_uses_only_the_last_n_informative_signals():
    # SKIP-like neutral signals do not use up a slot.
    signals = [sig(e(0)), sig(e(1)), sig(e(5), polarity=0), sig(e(2)), sig(e(6), polarity=0)]
    u = user_vector(signals, last_n=2)
    np.testing.assert_allclose(u, normalize(e(1) + e(2)), rtol=1e-6)


def test_negative_signal_pushes_the_user_vector_away():
    liked = normalize(e(0) + e(1))
    rejected = e(1)
    without = user_vector([sig(liked, 8)], last_n=5)
    with_negative = user_vector([sig(liked, 8), sig(rejected, 8, polarity=-1)], last_n=5)
    assert float(without @ rejected) > 0.5
    assert float(with_negative @ rejected) < 0.0
    assert float(with_negative @ e(0)) > float(without @ e(0))


def test_user_vector_is_none_without_a_positive_signal():
    assert user_vector([], last_n=5) is None
    assert user_vector([sig(e(0), polarity=-1), sig(e(1), polarity=0)], last_n=5) is None
    # Everything cancelling out says nothing either.
    assert user_vector([sig(e(0)), sig(e(0), polarity=-1)], last_n=5) is None


def test_decay_favours_recent_signals():
    signals = [sig(e(0)), sig(e(1))]  # e(1) is the newest
    u = user_vector(signals, last_n=5, decay=1.0)
    assert u[1] > u[0]
    np.testing.assert_allclose(u, normalize(np.exp(-1.0) * e(0) + e(1)), rtol=1e-6)
    aged = user_vector([sig(e(0)), sig(e(1), age=3)], last_n=5, decay=1.0)
    assert aged[0] > aged[1]


def test_alpha_zero_queries_the_mean():
    signals = [sig(e(0)), sig(e(1))]
    [q] = interest_vectors(signals, last_n=5, alpha=0.0)
    np.testing.assert_allclose(q, normalize(e(0) + e(1)), rtol=1e-6)


def test_alpha_one_queries_each_recent_positive_signal():
    signals = [sig(e(0)), sig(e(3), polarity=-1), sig(e(1)), sig(e(1))]
    queries = interest_vectors(signals, last_n=5, alpha=1.0)
    assert len(queries) == 2  # newest first, the duplicate watch+like merged
    np.testing.assert_allclose(queries[0], e(1), atol=1e-6)
    np.testing.assert_allclose(queries[1], e(0), atol=1e-6)


def test_alpha_between_blends_mean_and_signal():
    signals = [sig(e(0)), sig(e(1))]
    mean = normalize(e(0) + e(1))
    queries = interest_vectors(signals, last_n=5, alpha=0.5)
    np.testing.assert_allclose(queries[0], normalize(0.5 * mean + 0.5 * e(1)), rtol=1e-6)
    np.testing.assert_allclose(queries[1], normalize(0.5 * mean + 0.5 * e(0)), rtol=1e-6)


def test_no_queries_without_positive_signals():
    assert interest_vectors([sig(e(0), polarity=-1)], last_n=5, alpha=0.0) == []
    assert interest_vectors([], last_n=5, alpha=1.0) == []


def test_add_noise_zero_is_identity_and_draws_nothing():
    v = e(0)
    rng = np.random.default_rng(1)
    assert add_noise(v, 0.0, rng) is v
    assert rng.random() == np.random.default_rng(1).random()


def test_add_noise_stays_unit_and_near_for_small_mu():
    v = normalize(np.ones(384))
    small = add_noise(v, 0.05, np.random.default_rng(0))
    large = add_noise(v, 1.0, np.random.default_rng(0))
    assert np.linalg.norm(small) == pytest.approx(1.0, abs=1e-5)
    assert float(small @ v) > 0.99
    assert float(large @ v) < float(small @ v)
    np.testing.assert_array_equal(small, add_noise(v, 0.05, np.random.default_rng(0)))


def test_mmr_with_lambda_one_is_top_k():
    sims = np.array([0.2, 0.9, 0.5, 0.7], dtype=np.float32)
    vectors = np.eye(4, dtype=np.float32)
    assert mmr(sims, vectors, 3, 1.0) == [1, 3, 2]


def test_mmr_skips_near_duplicates():
    # Items 0 and 1 are the same direction; 2 is different but a bit less relevant.
    vectors = normalize_rows([[1, 0, 0], [1, 0.01, 0], [0, 1, 0]])
    sims = np.array([0.9, 0.89, 0.7], dtype=np.float32)
    assert mmr(sims, vectors, 2, 0.5) == [0, 2]
    assert mmr(sims, vectors, 2, 1.0) == [0, 1]
    assert mmr(sims, vectors, 10, 0.5) == [0, 2, 1]
    assert mmr(sims, vectors, 0, 0.5) == []


def test_kmeans_separates_clusters_and_normalises_centroids():
    rng = np.random.default_rng(0)
    a = normalize_rows(e(0) + 0.05 * rng.standard_normal((10, DIM)))
    b = normalize_rows(e(1) + 0.05 * rng.standard_normal((10, DIM)))
    centroids, labels = kmeans(np.vstack([a, b]), 2, seed=0)
    assert centroids.shape == (2, DIM)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, rtol=1e-5)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1
    assert labels[0] != labels[10]
    again, labels_again = kmeans(np.vstack([a, b]), 2, seed=0)
    np.testing.assert_array_equal(labels, labels_again)


def test_a_bias_seeds_the_oldest_positive_evidence_and_real_signals_take_over():
    from algorithms.vectors import seeded_with_bias

    seeded = seeded_with_bias([sig(e(1))], [e(0) * 3, np.zeros(DIM)], weight=20.0)
    assert len(seeded) == 2 and seeded[0].weight == 20.0 and seeded[0].polarity == 1
    assert np.allclose(seeded[0].vector, e(0))  # normalised; a zero bias says nothing
    assert user_vector(seeded_with_bias([], [e(0)], 1.0), last_n=5) @ e(0) == pytest.approx(1.0)
    # Once last_n real signals came, the seed is out of the window.
    assert user_vector(seeded_with_bias([sig(e(1))], [e(0)], 1.0), last_n=1) @ e(0) == pytest.approx(0.0)
