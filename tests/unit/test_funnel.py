"""The partner funnel's stages on hand-made vectors: what each filter and rule does to a page,
and that the stages' counts add up."""
import numpy as np
from algorithms.ranking.funnel import (
    FUNNEL_STAGES,
    RECALL_K,
    RERANKERS,
    Filters,
    FunnelContext,
    InMemoryFunnelCatalog,
    Rules,
    Sponsored,
    VideoFacts,
    run_funnel,
)
from tests.unit.handmade_vectors import DIM, cluster, e

NOW = 1_700_000_000.0
DAY = 86400.0


def make_catalog(n=300, seed=0):
    """``n`` videos around axis 0 (the query) and the rest of the space; creator ``id % 10``,
    every 100th in French, followers = id, one video in 100 tagged #rare, one day older per id."""
    rng = np.random.default_rng(seed)
    vectors = np.concatenate([cluster(e(0), n // 2, 0.3, seed), rng.standard_normal((n - n // 2, DIM))])
    ids = list(range(1, n + 1))
    facts = {
        i: VideoFacts(creator=i % 10, language="fr" if i % 100 == 0 else "en", followers=i,
                      created_at=NOW - i * DAY, plays=i * 10, hashtags=frozenset({"rare"} if i % 100 == 7 else {"common"}))
        for i in ids
    }
    return InMemoryFunnelCatalog(ids, vectors, facts, {c: e(0) if c == 3 else e(5) for c in range(10)})


def page(catalog, limit=10, **kwargs):
    context = FunnelContext(catalog=catalog, query=e(0), limit=limit, now=NOW, **kwargs)
    items = run_funnel(context)
    return items, context


def test_stages_are_registered_and_counts_add_up():
    assert {"recall", "filter", "recall_exact", "rerank", "rules", "top"} <= set(FUNNEL_STAGES)
    assert "hand_weighted" in RERANKERS
    items, context = page(make_catalog(), filters=Filters(min_followers=150), rules=Rules(creator_quota=2))
    stages = context.stages
    assert stages[0].name == "recall" and stages[0].received == 0 and stages[0].kept == RECALL_K
    for before, after in zip(stages, stages[1:]):
        assert after.received == before.kept
    assert stages[-1].name == "top" and stages[-1].kept == len(items) == 10
    assert all(s.ms >= 0 for s in stages)


def test_items_are_ordered_by_score_with_parts():
    items, _ = page(make_catalog())
    scores = [c.score for c in items]
    assert scores == sorted(scores, reverse=True)
    assert set(items[0].parts) == {"similarity", "creator_affinity", "popularity", "freshness", "negative"}


def test_language_filter():
    items, _ = page(make_catalog(), filters=Filters(language="FR"))
    assert items and all(c.id % 100 == 0 for c in items)


def test_min_followers_filter():
    items, _ = page(make_catalog(), filters=Filters(min_followers=120))
    assert all(c.id >= 120 for c in items)
    unfiltered, _ = page(make_catalog())
    assert any(c.id < 120 for c in unfiltered)


def test_fresh_within_days_filter():
    items, _ = page(make_catalog(), filters=Filters(fresh_within_days=40))
    assert len(items) == 10 and all(c.id <= 40 for c in items)


def test_blocked_creators_and_hashtags():
    unfiltered, _ = page(make_catalog(), limit=50)
    blocked = {unfiltered[0].creator, unfiltered[1].creator}
    items, _ = page(make_catalog(), limit=50, filters=Filters(blocked_creators=blocked))
    assert items and not blocked & {c.creator for c in items}
    items, _ = page(make_catalog(), limit=100, filters=Filters(blocked_hashtags={"#Common"}))
    assert items and all(c.id % 100 == 7 for c in items)


def test_a_filter_matching_one_percent_still_fills_the_page():
    catalog = make_catalog(n=1000)
    # 10 of 1000 videos are French; the approximate recall of 200 sees only some of them.
    items, context = page(catalog, filters=Filters(language="fr"))
    assert len(items) == 10 and {c.id for c in items} == set(range(100, 1001, 100))
    assert [s.name for s in context.stages][:3] == ["recall", "filter", "recall_exact"]


def test_creator_quota():
    unfiltered, _ = page(make_catalog(), limit=30)
    assert max(np.unique([c.creator for c in unfiltered], return_counts=True)[1]) > 2
    items, _ = page(make_catalog(), limit=30, rules=Rules(creator_quota=2))
    assert len(items) == 20  # ten creators, two each
    assert max(np.unique([c.creator for c in items], return_counts=True)[1]) == 2


def test_sponsored_videos_take_their_positions():
    items, _ = page(make_catalog(), rules=Rules(sponsored=(Sponsored(299, 1), Sponsored(298, 4))))
    assert [items[0].id, items[3].id] == [299, 298]
    assert items[0].source == "sponsored" and len(items) == 10
    assert len({c.id for c in items}) == 10


def test_negatives_push_their_neighbours_down():
    catalog = make_catalog()
    items, _ = page(catalog)
    negative = catalog.vectors([items[0].id])
    penalised, _ = page(catalog, negatives=negative)
    assert items[0].id not in {c.id for c in penalised}
    assert all(0 <= c.parts["negative"] < 1 for c in penalised)


def test_creator_affinity_lifts_the_creator_near_the_query():
    items, _ = page(make_catalog())
    assert all(c.parts["creator_affinity"] == (1.0 if c.creator == 3 else 0.0) for c in items)


def test_excluded_videos_never_come_back():
    first, _ = page(make_catalog())
    items, _ = page(make_catalog(), exclude=frozenset(c.id for c in first))
    assert not {c.id for c in first} & {c.id for c in items}


def test_a_named_reranker_can_replace_the_hand_weighted_one():
    @__import__("algorithms.ranking.funnel", fromlist=["reranker"]).reranker("test_by_id")
    def by_id(context, candidates):
        return sorted(candidates, key=lambda c: c.id)

    try:
        items, _ = page(make_catalog(), reranker="test_by_id")
        assert [c.id for c in items] == sorted(c.id for c in items)
    finally:
        del RERANKERS["test_by_id"]
