"""The ranking stages and evidence ranking, on small hand-made vector sets."""
import numpy as np
import pytest

from algorithms.ranking import BATCH_TYPES, BUILDERS, STAGES, BatchParams, InMemoryCatalog, build_batch, param_errors
from algorithms.ranking.candidates import SOURCE_RANDOM, Candidate
from algorithms.ranking.evidence import Evidence, EvidenceScores, trust
from algorithms.ranking.stages import BatchContext, _evidence_scores, run
from algorithms.vectors import WeightedSignal, normalize

from handmade_vectors import cluster, e  # tests/unit is on the path (no __init__.py)



def signal(vector, weight=20.0, polarity=1):
    return WeightedSignal(normalize(vector), weight, polarity)


@pytest.fixture
def clusters():
    """Six tight clusters around e0..e5, 10 items each: ids 100*c .. 100*c + 9, one creator
    per item except cluster 0, whose items all share creator 7."""
    vectors = np.vstack([cluster(e(c), 10, 0.05, c) for c in range(6)])
    ids = [100 * c + i for c in range(6) for i in range(10)]
    creators = [7 if c == 0 else 1000 + 100 * c + i for c in range(6) for i in range(10)]
    return InMemoryCatalog(ids, vectors, creators=creators)


def cluster_of(item):
    return item // 100


EVIDENCE = dict(score_last_n=20, kernel_width=0.1)


def test_a_candidate_near_a_skipped_video_ranks_below_one_that_is_not():
    # Both candidates are equally near what was watched (e0); one is also near a skip (e1).
    watched = e(0)
    skipped = e(1)
    near_skip = normalize(e(0) + e(1))
    clear = normalize(e(0) + e(2))
    evidence = Evidence.from_signals([signal(watched), signal(skipped, 10.0, -1)], last_n=10)
    scores = EvidenceScores(np.stack([near_skip, clear]), evidence, width=0.1, explore_bonus=0.0)
    assert scores.score()[1] > scores.score()[0]
    assert scores.parts(0)["skipped_near"] > scores.parts(1)["skipped_near"]
    # Without the skip the two are tied: the skip alone makes the difference.
    alone = EvidenceScores(np.stack([near_skip, clear]), Evidence.from_signals([signal(watched)], 10), 0.1, 0.0)
    assert alone.score()[0] == pytest.approx(alone.score()[1])


def test_a_viewer_who_skips_a_kind_stops_being_served_it(clusters):
    # Liked a video between clusters 1 and 2, then skipped five of cluster 2.
    signals = [signal(normalize(e(1) + e(2)))] + [signal(v, 10.0, -1) for v in clusters.vectors([200, 201, 202, 203, 204])]
    params = BatchParams(last_n=6, alpha=1.0, **EVIDENCE)
    batch = build_batch("personalized", params, clusters, signals, 5, frozenset({200, 201, 202, 203, 204}), np.random.default_rng(0))
    assert [cluster_of(c.id) for c in batch].count(2) == 0
    assert all(c.score is not None and "skipped_near" in c.parts for c in batch)
    # Ranked by similarity alone, the same viewer is served cluster 2 again.
    plain = build_batch("personalized", BatchParams(last_n=6, alpha=1.0), clusters, signals, 5,
                        frozenset({200, 201, 202, 203, 204}), np.random.default_rng(0))
    assert [cluster_of(c.id) for c in plain].count(2) > 0


def test_exploration_covers_k_regions_in_k_slots(clusters):
    params = BatchParams(r=1.0, explore_regions=True, explore_bonus=0.3, **EVIDENCE)
    for seed in range(5):
        batch = build_batch("personalized", params, clusters, [], 5, frozenset(), np.random.default_rng(seed))
        assert len({cluster_of(c.id) for c in batch}) == 5
        assert {c.source for c in batch} == {"explore"}


def test_region_exploration_avoids_what_was_rejected(clusters):
    # Clusters 0-3 were each skipped; exploration goes to 4 and 5.
    rejected = [signal(v, 10.0, -1) for v in clusters.vectors([0, 100, 200, 300])]
    params = BatchParams(r=1.0, explore_regions=True, explore_bonus=0.3, **EVIDENCE)
    batch = build_batch("personalized", params, clusters, rejected, 2, frozenset({0, 100, 200, 300}), np.random.default_rng(1))
    assert {cluster_of(c.id) for c in batch} == {4, 5}


def test_one_noisy_positive_does_not_make_a_batch_single_topic(clusters):
    params = BatchParams(last_n=5, alpha=1.0, r=0.2, explore_regions=True, explore_bonus=0.3, creator_cap=2, **EVIDENCE)
    one_long_watch = [signal(clusters.vectors([300])[0])]
    batch = build_batch("personalized", params, clusters, one_long_watch, 5, frozenset({300}), np.random.default_rng(0))
    assert len({cluster_of(c.id) for c in batch}) >= 2


def test_creator_cap_limits_one_creator_in_every_personalised_ranking(clusters):
    watched = [signal(e(0))]  # cluster 0: ten videos, all by creator 7
    for extra in ({}, {"apply_mmr": True}, EVIDENCE):
        params = BatchParams(last_n=3, creator_cap=2, **extra)
        batch = build_batch("personalized", params, clusters, watched, 5, frozenset(), np.random.default_rng(0))
        creators = clusters.creators([c.id for c in batch])
        assert creators.count(7) == 2, extra
        assert len(batch) == 5
        # The previous batch's videos count: two of creator 7 there leave none for this one.
        again = build_batch("personalized", params, clusters, watched, 5, frozenset(), np.random.default_rng(0),
                            recent_creators=[7, 7])
        assert clusters.creators([c.id for c in again]).count(7) == 0


def test_every_batch_type_has_a_builder_and_stages_are_timed(clusters):
    assert set(BUILDERS) == set(BATCH_TYPES)
    assert {"recall_random", "recall_ann", "recall_topics", "rank_by_evidence", "diversify_mmr",
            "cap_creators", "explore", "fill"} <= set(STAGES)
    timings = {}
    build_batch("personalized", BatchParams(r=0.4, explore_regions=True, explore_bonus=0.3, **EVIDENCE), clusters,
                [signal(e(1))], 5, frozenset(), np.random.default_rng(0), timings=timings)
    assert {"recall_ann", "rank_by_evidence", "explore", "fill"} <= set(timings)
    assert all(ms >= 0 for ms in timings.values())


def test_stages_never_return_seen_or_taken_items(clusters):
    context = BatchContext(BatchParams(**EVIDENCE, explore_bonus=0.3), clusters, [signal(e(0))], 5,
                           frozenset(range(0, 10)), np.random.default_rng(0))
    context.taken.update({100, 101})
    pool = run("recall_random", context, 40)
    picked = run("rank_by_evidence", context, pool + run("recall_ann", context, [e(0), e(1)], 5), 5)
    assert not {c.id for c in picked} & (set(range(10)) | {100, 101})
    assert len({c.id for c in picked}) == 5


@pytest.mark.parametrize("params, message", [
    ({"score_last_n": -1}, "score_last_n=-1 must be a whole number >= 0"),
    ({"creator_cap": 1.5}, "creator_cap=1.5 must be a whole number >= 0"),
    ({"kernel_width": 0}, "kernel_width=0 must be a number between 0.01 and 1.0"),
    ({"explore_bonus": -0.1}, "explore_bonus=-0.1 must be a number >= 0"),
    ({"explore_regions": "yes"}, "explore_regions='yes' must be true or false"),
    ({"creator_trust": -1}, "creator_trust=-1 must be a whole number >= 0"),
    ({"exploit_above": 1.5}, "exploit_above=1.5 must be a number between 0 and 1"),
])
def test_new_params_are_validated_like_the_old_ones(params, message):
    assert param_errors(params) == [f"param {message}"]


def test_new_params_parse_and_default_off():
    assert BatchParams.from_mapping({"score_last_n": 30, "creator_cap": 2.0, "explore_regions": True}) == BatchParams(
        score_last_n=30, creator_cap=2, explore_regions=True)
    assert (BatchParams().score_last_n, BatchParams().creator_cap, BatchParams().explore_bonus) == (0, 0, 0.0)
    assert (BatchParams().creator_trust, BatchParams().exploit_above) == (0, 0.0)


class CountingCatalog(InMemoryCatalog):
    """Records how many queries each search_many call carries."""

    searches: list

    def search_many(self, queries, k, exclude=frozenset(), min_similarity=-1.0):
        self.searches.append((len(queries), k))
        return super().search_many(queries, k, exclude, min_similarity)


def test_max_queries_bounds_the_index_scans_of_a_batch():
    vectors = np.vstack([cluster(e(c), 10, 0.05, c) for c in range(6)])
    catalog = CountingCatalog(list(range(60)), vectors)
    five_interests = [signal(e(c)) for c in range(5)]
    for max_queries, expected in ((0, 5), (2, 2)):
        catalog.searches = []
        params = BatchParams(last_n=10, alpha=1.0, max_queries=max_queries, **EVIDENCE)
        batch = build_batch("personalized", params, catalog, five_interests, 5, frozenset(), np.random.default_rng(0))
        assert len(batch) == 5
        assert [count for count, _ in catalog.searches] == [expected]


def test_the_creator_cap_holds_across_the_stages_of_a_batch():
    # One creator owns 6 of the 10 videos of every cluster: targeted and exploration slots both
    # want them, and together they may take two.
    vectors = np.vstack([cluster(e(c), 10, 0.05, c) for c in range(6)])
    ids = list(range(60))
    creators = [7 if i % 10 < 6 else 1000 + i for i in ids]
    catalog = InMemoryCatalog(ids, vectors, creators=creators)
    params = BatchParams(last_n=3, alpha=1.0, r=0.4, explore_regions=True, explore_bonus=0.3, creator_cap=2, **EVIDENCE)
    for seed in range(30):
        batch = build_batch("personalized", params, catalog, [signal(e(0))], 5, frozenset(), np.random.default_rng(seed))
        assert len(batch) == 5
        assert catalog.creators([c.id for c in batch]).count(7) <= 2, seed


def test_exploration_goes_where_the_batch_has_not_already_gone(clusters):
    # The targeted slots fill up near e0 (cluster 0); the exploration slots go elsewhere.
    params = BatchParams(last_n=3, alpha=1.0, r=0.4, explore_regions=True, explore_bonus=0.3, **EVIDENCE)
    for seed in range(10):
        batch = build_batch("personalized", params, clusters, [signal(e(0))], 5, frozenset(), np.random.default_rng(seed))
        explored = [c for c in batch if c.source == "explore"]
        assert len(explored) == 2 and all(cluster_of(c.id) != 0 for c in explored), seed


def creator_signal(catalog, item, weight=20.0, polarity=1):
    return WeightedSignal(catalog.vectors([item])[0], weight, polarity, creator=catalog.creators([item])[0])


def test_the_creator_cap_yields_to_a_viewer_who_keeps_watching_that_creator(clusters):
    # Cluster 0's ten videos are all by creator 7; the cap allows two of them in a batch.
    params = BatchParams(last_n=5, alpha=1.0, creator_cap=2, creator_trust=2, **EVIDENCE)
    seen = frozenset({0, 1, 2, 3})

    def creator_7_in_batch(signals):
        batch = build_batch("personalized", params, clusters, signals, 5, seen, np.random.default_rng(0))
        return clusters.creators([c.id for c in batch]).count(7)

    # Two long watches of creator 7: agreement, the cap no longer holds for them.
    assert creator_7_in_batch([creator_signal(clusters, 0), creator_signal(clusters, 1)]) > 2
    # One long watch (perhaps noise) does not lift it...
    assert creator_7_in_batch([creator_signal(clusters, 0)]) == 2
    # ... nor do two when the viewer skipped as many of the creator's videos.
    mixed = [creator_signal(clusters, i) for i in (0, 1)] + [creator_signal(clusters, i, 10.0, -1) for i in (2, 3)]
    assert creator_7_in_batch(mixed) <= 2
    # creator_trust 0 (the default): the cap always holds.
    plain = BatchParams(last_n=5, alpha=1.0, creator_cap=2, **EVIDENCE)
    batch = build_batch("personalized", plain, clusters, [creator_signal(clusters, i) for i in (0, 1)], 5, seen,
                        np.random.default_rng(0))
    assert clusters.creators([c.id for c in batch]).count(7) == 2


def test_a_positive_the_skips_around_it_contradict_is_left_for_exploration(clusters):
    # One long watch in cluster 3 (weight 20), then five of its neighbours skipped (10 each):
    # its neighbours are liked with a chance of about (20 + 1) / (20 + 50 + 10) = 0.26 now.
    params = BatchParams(last_n=10, alpha=1.0, exploit_above=0.3, **EVIDENCE)
    watched, skipped = 300, [301, 302, 303, 304, 305]
    noisy = [creator_signal(clusters, watched)] + [creator_signal(clusters, i, 10.0, -1) for i in skipped]
    seen = frozenset({watched, *skipped})
    for seed in range(5):
        batch = build_batch("personalized", params, clusters, noisy, 5, seen, np.random.default_rng(seed))
        # No slot exploits cluster 3; an exploration draw (uniform here) may still land there.
        assert "ann" not in {c.source for c in batch}, seed
        assert [cluster_of(c.id) for c in batch].count(3) <= 1, seed
    # Three long watches there agree: the targeted slots stay in cluster 3.
    agreed = [creator_signal(clusters, i) for i in (300, 301, 302)]
    batch = build_batch("personalized", params, clusters, agreed, 5, frozenset({300, 301, 302}), np.random.default_rng(0))
    assert [cluster_of(c.id) for c in batch].count(3) == 5
    assert {c.source for c in batch} == {"ann"}


def test_a_long_watch_whose_neighbours_were_skipped_is_believed_less():
    # Two long watches: one in cluster 0 whose neighbours were then skipped, one in cluster 1
    # corroborated by another long watch next to it.
    skipped_nearby = [signal(normalize(e(0) + 0.1 * e(k)), 10.0, -1) for k in (3, 4, 5)]
    signals = [signal(e(0)), signal(e(1)), signal(normalize(e(1) + 0.1 * e(2)))] + skipped_nearby
    evidence = Evidence.from_signals(signals, last_n=10)
    watched = evidence.positive > 0

    def trust_of_watch_at(axis, corroboration=3.0):
        return trust(evidence, 0.1, corroboration)[watched & (evidence.vectors @ e(axis) > 0.99)][0]

    assert trust_of_watch_at(0) < 0.5 < 0.99 < trust_of_watch_at(1)
    assert trust(evidence, 0.1, 3.0)[~watched].tolist() == [1.0] * 3  # skips are not discounted
    # The more corroboration weighs, the less the contradicted watch counts; 0 believes it all.
    assert trust_of_watch_at(0, 6.0) < trust_of_watch_at(0)
    assert trust(evidence, 0.1, 0.0).tolist() == [1.0] * len(evidence)


def test_corroboration_sends_a_contradicted_long_watch_s_slots_exploring(clusters):
    # One long watch in cluster 3, then four of its neighbours skipped: without corroboration its
    # other neighbours still outrank the unexplored clusters; with it, the batch leaves cluster 3.
    params = dict(last_n=10, alpha=1.0, explore_bonus=0.3, **EVIDENCE)
    watched, skipped = 300, [301, 302, 303, 304]
    noisy = [signal(clusters.vectors([watched])[0])] + [signal(v, 10.0, -1) for v in clusters.vectors(skipped)]
    seen = frozenset({watched, *skipped})
    counts = {}
    for corroboration in (0.0, 3.0):
        p = BatchParams(corroboration=corroboration, **params)
        counts[corroboration] = sum([cluster_of(c.id) for c in build_batch(
            "personalized", p, clusters, noisy, 5, seen, np.random.default_rng(seed))].count(3) for seed in range(5))
    assert counts[3.0] < counts[0.0]
    assert counts[3.0] <= 5  # at most about one card a batch goes back there


def test_the_default_algorithm_leaves_a_long_watch_whose_neighbours_were_skipped(clusters):
    # The shipped `evidence` focus state: one long watch in cluster 3, then two of its neighbours
    # skipped, as a viewer's noisy long watch goes. It stops serving cluster 3 (at most about one
    # card a batch goes back there), where without corroboration the watch's other neighbours
    # keep coming; a long watch the viewer corroborated (two more long watches next to it, one
    # skip) keeps its cluster served.
    import dataclasses
    import json

    from algorithms.blueprints import LIBRARY_DIR, parse_blueprint

    shipped = parse_blueprint(json.loads((LIBRARY_DIR / "evidence_default.json").read_text()))
    params = shipped.state("focus").batch_params

    def served_from_cluster_3(params, watched, skipped):
        signals = [signal(v) for v in clusters.vectors(watched)] + [signal(v, 10.0, -1) for v in clusters.vectors(skipped)]
        return sum([cluster_of(c.id) for c in build_batch("personalized", params, clusters, signals, 5,
                                                          frozenset(watched + skipped), np.random.default_rng(seed))
                    ].count(3) for seed in range(5))

    noisy = ([300], [301, 302])
    assert served_from_cluster_3(params, *noisy) <= 5
    assert served_from_cluster_3(dataclasses.replace(params, corroboration=0.0), *noisy) > 5
    assert served_from_cluster_3(params, [300, 305, 306], [301]) >= 10


def test_coverage_is_judged_against_how_crowded_the_region_is():
    # A (e0) lies in a crowded region: ten of twelve videos drawn at random lie around it, two
    # around B (e1). The viewer was shown three videos as near A as one is near B: three of a
    # crowded region's videos are a smaller share of it tried than one of a sparse region's, so
    # A's region is the less tried. Read raw, A's three shown neighbours make it the more tried.
    def around(centre, direction, angle=0.6):
        return np.cos(angle) * e(centre) + np.sin(angle) * normalize(direction)

    sideways = [sign * e(axis) for axis in (2, 3, 4, 5, 6) for sign in (1, -1)]
    drawn = [around(0, d) for d in sideways] + [around(1, e(7)), around(1, -e(7))]
    shown = [around(0, e(7)), around(0, -e(7)), around(0, e(2) + e(3)), around(1, e(2))]
    evidence = Evidence.from_signals([signal(v, 10.0, -1) for v in shown], last_n=10)
    vectors = np.stack([e(0), e(1), *drawn])

    raw = EvidenceScores(vectors, evidence, width=0.2, explore_bonus=0.4)
    assert raw.bonus[0] < raw.bonus[1] and raw.covered[0] > raw.covered[1]

    relative = EvidenceScores(vectors, evidence, width=0.2, explore_bonus=0.4)
    relative.judge_coverage_relative_to(range(2, len(vectors)))
    assert relative.bonus[0] > relative.bonus[1] and relative.covered[0] < relative.covered[1]
    assert relative.relative_density[0] > 1 > relative.relative_density[1]
    # Evidence is unchanged: only how far each region counts as tried.
    assert relative.liked.tolist() == raw.liked.tolist()


def test_min_relative_density_bounds_how_much_a_sparse_region_counts_as_tried(clusters):
    # A (e0) is isolated: none of the videos drawn at random lie near it; B (e1) is crowded: the
    # draws lie around it. The viewer was shown one video as near A as another is near B. Read
    # against a typical region, B's shown video counts as less of B tried, and A's as more of
    # A tried, at most 1 / min_relative_density times what was shown near it.
    def around(centre, direction, angle=0.6):
        return np.cos(angle) * e(centre) + np.sin(angle) * normalize(direction)

    drawn = [around(1, sign * e(axis)) for axis in (2, 3, 4, 5) for sign in (1, -1)]
    shown = [around(0, e(6)), around(1, e(7))]
    evidence = Evidence.from_signals([signal(v, 10.0, -1) for v in shown], last_n=10)
    vectors = np.stack([e(0), e(1), *drawn])
    raw = EvidenceScores(vectors, evidence, width=0.2, explore_bonus=0.4)

    def judged(floor):
        scores = EvidenceScores(vectors, evidence, width=0.2, explore_bonus=0.4)
        scores.judge_coverage_relative_to(range(2, len(vectors)), floor)
        return scores

    # A floor of 1: the crowded region is discounted, the sparse one judged by what was shown alone.
    sparse_as_shown = judged(1.0)
    assert sparse_as_shown.covered[0] == pytest.approx(raw.covered[0])
    assert sparse_as_shown.covered[1] < raw.covered[1]
    # A lower floor: what was shown near the isolated video counts up to 1 / floor times.
    for floor in (0.25, 0.5):
        assert judged(floor).covered[0] == pytest.approx(raw.covered[0] / floor)
        assert judged(floor).covered[1] == pytest.approx(sparse_as_shown.covered[1])

    # The state's param reaches the ranking, and it is validated like the others.
    # (A draw from cluster 5 is far from the other draws, from clusters 0 and 1.)
    pool = [Candidate(i, None, SOURCE_RANDOM) for i in [*range(10), *range(100, 110), 500]]
    for floor in (0.25, 1.0):
        params = BatchParams(score_last_n=20, kernel_width=0.2, relative_coverage=True, min_relative_density=floor)
        context = BatchContext(params, clusters, [signal(e(0))], 5, frozenset(), np.random.default_rng(0))
        assert _evidence_scores(context, pool, 0.4).relative_density.min() == pytest.approx(floor)
    assert param_errors({"min_relative_density": 0}) == [
        "param min_relative_density=0 must be a number between 0.01 and 1.0"]
