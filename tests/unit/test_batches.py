"""Batch assembly on small hand-made catalogs in 8 dimensions."""
import itertools

import numpy as np
import pytest

from algorithms.ranking import (
    BATCH_TYPES,
    BatchParams,
    Candidate,
    Catalog,
    InMemoryCatalog,
    build_batch,
)
from algorithms.vectors import WeightedSignal, normalize

from handmade_vectors import cluster, e  # tests/unit is on the path (no __init__.py)



def like(vector, weight=8.0, polarity=1):
    return WeightedSignal(normalize(vector), weight, polarity)


def rng(seed=0):
    return np.random.default_rng(seed)


def pairwise_mean(vectors):
    sims = vectors @ vectors.T
    n = len(vectors)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))


@pytest.fixture
def three_clusters():
    """A around e0 (ids 0-19), B around e1 (100-119), C halfway between (200-219)."""
    vectors = np.vstack([
        cluster(e(0), 20, 0.05, 1),
        cluster(e(1), 20, 0.05, 2),
        cluster(e(0) + e(1), 20, 0.05, 3),
    ])
    ids = list(range(0, 20)) + list(range(100, 120)) + list(range(200, 220))
    return InMemoryCatalog(ids, vectors)


def in_cluster(ids, start):
    return [i for i in ids if start <= i < start + 100]


# --- params -------------------------------------------------------------------

def test_params_defaults_and_parsing():
    assert BatchParams.from_mapping({}) == BatchParams()
    p = BatchParams.from_mapping({"last_n": 3, "r": 0, "apply_mmr": True, "n_topics": 12.0})
    assert (p.last_n, p.r, p.apply_mmr, p.n_topics) == (3, 0.0, True, 12)
    assert isinstance(p.n_topics, int) and isinstance(p.r, float)


def test_params_accept_firstbatch_threshold_pairs():
    assert BatchParams.from_mapping({"apply_threshold": [True, 0.4]}).apply_threshold == 0.4
    assert BatchParams.from_mapping({"apply_threshold": [False, 0.4]}).apply_threshold == 0.0
    assert BatchParams.from_mapping({"remove_duplicates": True}) == BatchParams()


def test_unknown_param_raises_naming_it():
    with pytest.raises(ValueError, match="unknown param 'alhpa'"):
        BatchParams.from_mapping({"alhpa": 0.5})


@pytest.mark.parametrize(
    "params", [{"r": 1.2}, {"last_n": 0}, {"apply_mmr": 1}, {"decay": -1}, {"remove_duplicates": False}]
)
def test_invalid_params_raise(params):
    with pytest.raises(ValueError):
        BatchParams.from_mapping(params)


# --- the in-memory catalog ---------------------------------------------------------

def test_in_memory_catalog_is_a_catalog_and_searches_exactly(three_clusters):
    assert isinstance(three_clusters, Catalog)
    hits = three_clusters.search(e(0), 5, frozenset({0, 1, 2}))
    assert len(hits) == 5
    assert all(item in range(3, 20) for item, _ in hits)
    sims = [sim for _, sim in hits]
    assert sims == sorted(sims, reverse=True)
    assert three_clusters.search(e(0), 100, frozenset(), min_similarity=0.9) == three_clusters.search(e(0), 20, frozenset())
    np.testing.assert_allclose(three_clusters.vectors([200, 0])[1], three_clusters.vectors([0])[0])


# --- random share ------------------------------------------------------------------

def test_r_one_gives_only_random_items(three_clusters):
    params = BatchParams(r=1.0)
    batch = build_batch("personalized", params, three_clusters, [like(e(0))], 10, frozenset(), rng())
    assert len(batch) == 10
    assert {c.source for c in batch} == {"random"}
    assert all(c.similarity is None for c in batch)


def test_r_sets_the_number_of_random_slots_and_spreads_them(three_clusters):
    batch = build_batch("personalized", BatchParams(r=0.5), three_clusters, [like(e(0))], 5, frozenset(), rng())
    sources = [c.source for c in batch]
    assert sources.count("random") == 3  # 2.5 rounds half up
    assert sources != sorted(sources)  # not all piled at one end
    personal = [c for c in batch if c.source == "ann"]
    assert all(c.id < 20 for c in personal)


def test_random_batch_is_all_random_and_distinct(three_clusters):
    batch = build_batch("random", BatchParams(), three_clusters, [like(e(0))], 12, frozenset(), rng())
    assert len({c.id for c in batch}) == 12
    assert {c.source for c in batch} == {"random"}


def test_popularity_weighted_random_prefers_popular_items():
    ids = list(range(50))
    popularity = [1e6 if i < 5 else 0 for i in ids]
    catalog = InMemoryCatalog(ids, cluster(e(0), 50, 1.0, 7), popularity=popularity)
    weighted = build_batch("random", BatchParams(popularity_weighted=True), catalog, [], 5, frozenset(), rng())
    uniform = build_batch("random", BatchParams(), catalog, [], 5, frozenset(), rng())
    assert sorted(c.id for c in weighted) == [0, 1, 2, 3, 4]
    assert sorted(c.id for c in uniform) != [0, 1, 2, 3, 4]


# --- personalised ---------------------------------------------------------------------

def test_personalized_returns_nearest_items_with_their_cosine(three_clusters):
    batch = build_batch("personalized", BatchParams(), three_clusters, [like(e(0))], 5, frozenset(), rng())
    assert all(c.source == "ann" and c.id < 20 for c in batch)
    vectors = three_clusters.vectors([c.id for c in batch])
    np.testing.assert_allclose([c.similarity for c in batch], vectors @ e(0), rtol=1e-5)
    assert [c.similarity for c in batch] == sorted((c.similarity for c in batch), reverse=True)


def test_personalized_without_positive_signals_falls_back_to_random(three_clusters):
    for signals in ([], [like(e(0), polarity=-1)], [like(e(0), polarity=0)]):
        batch = build_batch("personalized", BatchParams(), three_clusters, signals, 10, frozenset(), rng())
        assert len(batch) == 10 and {c.source for c in batch} == {"random"}


def test_threshold_drops_far_items_and_random_fills_the_batch():
    near = cluster(e(0), 3, 0.02, 4)
    far = np.vstack([cluster(e(i), 5, 0.3, 10 + i) for i in range(2, 8)])
    catalog = InMemoryCatalog(range(33), np.vstack([near, far]))
    strict = build_batch("personalized", BatchParams(apply_threshold=0.9), catalog, [like(e(0))], 10, frozenset(), rng())
    loose = build_batch("personalized", BatchParams(), catalog, [like(e(0))], 10, frozenset(), rng())

    assert len(strict) == 10
    ann = [c for c in strict if c.source == "ann"]
    assert sorted(c.id for c in ann) == [0, 1, 2]
    assert all(c.similarity >= 0.9 for c in ann)
    assert [c.source for c in strict[3:]] == ["random"] * 7  # the fill comes last
    assert all(c.similarity is None for c in strict[3:])
    # Without the threshold the same slots are filled by far, personalised items.
    assert all(c.source == "ann" for c in loose)


def test_mmr_diversifies_the_batch():
    duplicates = cluster(e(0), 10, 0.01, 5)  # most relevant, nearly identical
    varied = cluster(e(0) + 0.1 * e(1), 20, 0.6, 6)
    catalog = InMemoryCatalog(range(30), np.vstack([duplicates, varied]))
    signals = [like(e(0))]
    plain = build_batch("personalized", BatchParams(), catalog, signals, 5, frozenset(), rng())
    diverse = build_batch("personalized", BatchParams(apply_mmr=True, mmr_lambda=0.5), catalog, signals, 5,
                          frozenset(), rng())
    plain_mean = pairwise_mean(catalog.vectors([c.id for c in plain]))
    diverse_mean = pairwise_mean(catalog.vectors([c.id for c in diverse]))
    assert diverse_mean < plain_mean - 0.1
    assert diverse[0].id == plain[0].id  # the most relevant item still leads
    assert all(c.source == "ann" for c in diverse)


def test_alpha_one_covers_two_interests_a_mean_would_blur(three_clusters):
    signals = [like(e(0)), like(e(1))]  # one interest in A, one in B
    blurred = [c.id for c in build_batch("personalized", BatchParams(alpha=0.0), three_clusters, signals, 10,
                                         frozenset(), rng())]
    multi = [c.id for c in build_batch("personalized", BatchParams(alpha=1.0), three_clusters, signals, 10,
                                       frozenset(), rng())]
    # The mean query lands between the interests, on cluster C.
    assert in_cluster(blurred, 200) == blurred
    # One query per interest, round-robin: both A and B are served.
    assert len(in_cluster(multi, 0)) == 5
    assert len(in_cluster(multi, 100)) == 5


class CountingCatalog(InMemoryCatalog):
    """Records how many query vectors each search is asked."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queries_asked: list[int] = []

    def search_many(self, queries, k, exclude=frozenset(), min_similarity=-1.0):
        self.queries_asked.append(len(queries))
        return super().search_many(queries, k, exclude, min_similarity)


@pytest.mark.parametrize("apply_mmr", [False, True])
def test_interests_beyond_the_targeted_slots_are_not_queried(apply_mmr):
    # Four interests, newest last: A (e0), B (e1), C (e2), D (e3); two targeted slots.
    vectors = np.vstack([cluster(e(i), 10, 0.05, i) for i in range(4)])
    catalog = CountingCatalog([100 * i + j for i in range(4) for j in range(10)], vectors)
    signals = [like(e(i)) for i in range(4)]
    params = BatchParams(alpha=1.0, last_n=4, r=0.6, apply_mmr=apply_mmr)
    batch = build_batch("personalized", params, catalog, signals, 5, frozenset(), rng())
    targeted = [c.id for c in batch if c.source == "ann"]
    assert catalog.queries_asked == [2]  # one search, for the two newest interests only
    assert sorted(i // 100 for i in targeted) == [2, 3]


def test_noise_moves_queries_but_keeps_the_batch_valid(three_clusters):
    calm = build_batch("personalized", BatchParams(), three_clusters, [like(e(0))], 10, frozenset(), rng(3))
    noisy = build_batch("personalized", BatchParams(mu=1.0), three_clusters, [like(e(0))], 10, frozenset(), rng(3))
    assert len({c.id for c in noisy}) == 10
    assert np.mean([c.similarity for c in noisy]) < np.mean([c.similarity for c in calm])


# --- history -------------------------------------------------------------------------

@pytest.mark.parametrize("batch_type", BATCH_TYPES)
def test_seen_items_are_never_served(three_clusters, batch_type):
    seen = frozenset(range(0, 15)) | frozenset(range(200, 215))
    params = BatchParams(r=0.2, n_topics=3)
    batch = build_batch(batch_type, params, three_clusters, [like(e(0))], 20, seen, rng(),
                        bias_vectors=[e(0)])
    ids = [c.id for c in batch]
    assert len(ids) == 20 and len(set(ids)) == 20
    assert not seen & set(ids)


@pytest.mark.parametrize("batch_type", BATCH_TYPES)
def test_nearly_exhausted_catalog_serves_what_is_left(three_clusters, batch_type):
    all_ids = [i for i in itertools.chain(range(20), range(100, 120), range(200, 220))]
    left = {7, 105, 219}
    seen = frozenset(all_ids) - left
    params = BatchParams(apply_threshold=0.95, n_topics=2)
    batch = build_batch(batch_type, params, three_clusters, [like(e(0))], 10, seen, rng(), bias_vectors=[e(1)])
    assert sorted(c.id for c in batch) == sorted(left)
    assert build_batch(batch_type, params, three_clusters, [like(e(0))], 10, frozenset(all_ids), rng(),
                       bias_vectors=[e(1)]) == []


def test_batches_are_deterministic_given_the_rng(three_clusters):
    params = BatchParams(r=0.3, mu=0.3, alpha=0.5, apply_mmr=True)
    signals = [like(e(0)), like(e(1))]
    first = build_batch("personalized", params, three_clusters, signals, 10, frozenset(), rng(42))
    second = build_batch("personalized", params, three_clusters, signals, 10, frozenset(), rng(42))
    assert first == second
    assert all(isinstance(c, Candidate) for c in first)


# --- sampled ---------------------------------------------------------------------------

@pytest.fixture
def topics():
    """Six topics around e0..e5, five items each; item id = 10 * topic + k."""
    vectors = np.vstack([cluster(e(t), 5, 0.05, 20 + t) for t in range(6)])
    ids = [10 * t + k for t in range(6) for k in range(5)]
    labels = [t for t in range(6) for _ in range(5)]
    return InMemoryCatalog(ids, vectors, topic_labels=labels)


def test_sampled_picks_one_item_from_each_of_n_topics(topics):
    batch = build_batch("sampled", BatchParams(n_topics=4), topics, [], 10, frozenset(), rng())
    from_topics = [c for c in batch if c.source == "topic"]
    assert len(from_topics) == 4
    assert len({c.id // 10 for c in from_topics}) == 4
    assert all(c.similarity > 0.9 for c in from_topics)  # cosine to their topic centroid
    assert len(batch) == 10 and {c.source for c in batch[4:]} == {"random"}


def test_sampled_leans_toward_the_viewers_topics(topics):
    signals = [like(e(2))]
    picks = [
        build_batch("sampled", BatchParams(n_topics=1), topics, signals, 1, frozenset(), rng(seed))[0].id // 10
        for seed in range(40)
    ]
    assert picks.count(2) > 30
    uniform = [
        build_batch("sampled", BatchParams(n_topics=1), topics, [], 1, frozenset(), rng(seed))[0].id // 10
        for seed in range(40)
    ]
    assert uniform.count(2) < 20


def test_sampled_skips_exhausted_topics(topics):
    seen = frozenset(range(0, 5)) | frozenset(range(10, 15)) | frozenset(range(20, 25))
    batch = build_batch("sampled", BatchParams(n_topics=3), topics, [], 3, seen, rng())
    assert [c.source for c in batch] == ["topic"] * 3
    assert {c.id // 10 for c in batch} == {3, 4, 5}


def test_sampled_without_topics_is_random(three_clusters):
    batch = build_batch("sampled", BatchParams(n_topics=4), three_clusters, [], 6, frozenset(), rng())
    assert {c.source for c in batch} == {"random"}


def test_with_topics_clusters_the_catalog(three_clusters):
    vectors = three_clusters.vectors(list(range(20)) + list(range(100, 120)))
    catalog = InMemoryCatalog.with_topics(range(40), vectors, n_topics=2, seed=0)
    assert catalog.topic_count() == 2
    first = set(catalog.topic_members(0, 40, frozenset(), rng()))
    assert first in ({*range(20)}, {*range(20, 40)})


# --- biased -------------------------------------------------------------------------------

def test_biased_centers_on_the_bias_vector(three_clusters):
    batch = build_batch("biased", BatchParams(), three_clusters, [], 10, frozenset(), rng(), bias_vectors=[e(1)])
    assert all(c.source == "bias" for c in batch)
    assert in_cluster([c.id for c in batch], 100) == [c.id for c in batch]


def test_biased_blends_in_the_viewer_by_alpha(three_clusters):
    viewer = [like(e(0))]
    pure_bias = build_batch("biased", BatchParams(alpha=0.0), three_clusters, viewer, 10, frozenset(), rng(),
                            bias_vectors=[e(1)])
    halfway = build_batch("biased", BatchParams(alpha=0.5), three_clusters, viewer, 10, frozenset(), rng(),
                          bias_vectors=[e(1)])
    assert all(100 <= c.id < 120 for c in pure_bias)
    assert all(200 <= c.id < 220 for c in halfway)  # between the bias (B) and the viewer (A)


def test_biased_without_bias_vectors_is_personalised(three_clusters):
    batch = build_batch("biased", BatchParams(), three_clusters, [like(e(0))], 5, frozenset(), rng())
    assert all(c.source == "ann" and c.id < 20 for c in batch)


def test_unknown_batch_type_raises(three_clusters):
    with pytest.raises(ValueError, match="trending"):
        build_batch("trending", BatchParams(), three_clusters, [], 5, frozenset(), rng())
