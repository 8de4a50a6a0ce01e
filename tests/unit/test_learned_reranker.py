"""The learned reranker without a database: its features, co-occurrence, training on a synthetic
log whose label depends on the features, and the funnel's ``learned`` and ``cross_encode``
stages on hand-made vectors."""
import numpy as np
import pytest

from algorithms.ranking.funnel import (
    CROSS_ENCODER_TOP,
    CROSS_ENCODER_WEIGHT,
    RERANKERS,
    FunnelContext,
    InMemoryFunnelCatalog,
    VideoFacts,
    run_funnel,
)
from algorithms.ranking.learned import (
    FEATURES,
    LoggedImpression,
    LoggedSignal,
    RerankerLog,
    TrainingRefused,
    ViewerProfile,
    co_occurrence,
    examples_from_log,
    feature_matrix,
    fit,
)
from algorithms.ranking.learned_scorer import LearnedScorer
from tests.unit.handmade_vectors import DIM, cluster, e

NOW = 1_700_000_000.0
DAY = 86400.0


def feature(rows, name):
    return rows[:, FEATURES.index(name)]


def profile(query=None, positives=(), negatives=(), language=None):
    stack = lambda vs: np.stack(vs) if len(vs) else np.zeros((0, DIM))  # noqa: E731
    return ViewerProfile(query, stack(list(positives)), stack(list(negatives)), (), language)


def test_a_candidate_near_the_negatives_gets_a_higher_negative_similarity():
    viewer = profile(query=e(0), positives=[e(0)], negatives=[e(1)])
    near_negative, far = cluster(e(1), 1, 0.05, 1)[0], cluster(e(2), 1, 0.05, 2)[0]
    rows = feature_matrix(viewer, np.stack([near_negative, far]), [VideoFacts(1), VideoFacts(2)], np.zeros(2), NOW)
    assert feature(rows, "negative_similarity")[0] > 0.9 > 0.2 > feature(rows, "negative_similarity")[1]
    assert feature(rows, "similarity")[0] < 0.2 and feature(rows, "positive_similarity")[0] < 0.2


def test_every_feature_lies_in_0_1_and_says_what_it_names():
    viewer = profile(query=e(0), positives=[e(0)], language="en")
    facts = [VideoFacts(1, "en", plays=1000, likes=100, created_at=NOW - 30 * DAY, duration_s=60, creator_affinity=0.7),
             VideoFacts(2, "fr", plays=0, likes=5, created_at=None, duration_s=3000, creator_affinity=-0.3),
             VideoFacts(3, "", plays=10**12, likes=10**13)]
    rows = feature_matrix(viewer, np.stack([e(0), e(1), e(0)]), facts, np.array([0.5, 0.0, 2.0]), NOW)
    assert rows.shape == (3, len(FEATURES)) and rows.min() >= 0 and rows.max() <= 1
    assert list(feature(rows, "language_match")) == [1.0, 0.0, 0.5]
    assert feature(rows, "like_rate")[0] == pytest.approx(0.1) and feature(rows, "like_rate")[1] == 0
    assert feature(rows, "freshness")[0] == pytest.approx(0.5) and feature(rows, "freshness")[1] == 0
    assert feature(rows, "duration")[0] == pytest.approx(0.2) and feature(rows, "duration")[1] == 1
    assert feature(rows, "popularity")[2] == 1 and 0 < feature(rows, "popularity")[0] < 1
    assert list(feature(rows, "creator_affinity")) == pytest.approx([0.7, 0.0, 0.0])
    assert list(feature(rows, "co_occurrence")) == [0.5, 0.0, 1.0]


def test_without_a_profile_the_viewer_features_are_zero():
    rows = feature_matrix(profile(), np.stack([e(0)]), [VideoFacts(1)], np.zeros(1), NOW)
    assert feature(rows, "similarity")[0] == feature(rows, "positive_similarity")[0] == 0


def test_co_occurrence_counts_other_sessions_only():
    histories = {1: frozenset({"a", "b", "me"}), 2: frozenset({"a", "b", "me"}), 3: frozenset({"c", "me"})}
    found = co_occurrence(histories, [1], [2, 3, 4], session="me")
    assert list(found) == [1.0, 0.0, 0.0]
    assert list(co_occurrence(histories, [], [2], "me")) == [0.0]
    # Counting "me" would give video 3 a share of video 1's viewers.
    assert co_occurrence(histories, [1], [3], session=None)[0] > 0


def test_a_training_example_knows_no_positive_that_came_after_it():
    # Session "a" liked video 1, then was served video 2 at t=100. Session "b" liked 1 and 2,
    # and co-occurrence links them, but only if b's likes came before a's impression: features
    # computed from the future leak the label's neighbourhood into training.
    vectors = {v: e(v % 3) for v in (1, 2)}
    facts = {v: VideoFacts(creator=v, language="en", plays=10, likes=1, created_at=NOW, duration_s=10) for v in (1, 2)}

    def cooc_of_a(b_at):
        log = RerankerLog([LoggedImpression("a", 2, 100.0, 1)],
                          [LoggedSignal("a", 1, 50.0, 1, True), LoggedSignal("a", 2, 130.0, 1, True),
                           LoggedSignal("b", 1, b_at, 1, True), LoggedSignal("b", 2, b_at + 1, 1, True)],
                          vectors, facts, {})
        X, _, _ = examples_from_log(log)
        return float(X[0, FEATURES.index("co_occurrence")])

    assert cooc_of_a(b_at=10.0) == 1.0
    assert cooc_of_a(b_at=200.0) == 0.0


def synthetic_log(sessions=40, per_session=24, seed=0, noise=0.02) -> RerankerLog:
    """Videos in 4 taste clusters; each session loves one taste: it watches those long (label 1,
    a positive signal) and skips the rest (label 0, a negative signal), ``noise`` of the labels
    flipped. What the viewer liked before predicts the next label."""
    rng = np.random.default_rng(seed)
    vectors, facts, taste_of = {}, {}, {}
    for video in range(1, 201):
        taste = video % 4
        vectors[video] = cluster(e(taste), 1, 0.15, seed * 1000 + video)[0]
        facts[video] = VideoFacts(creator=video % 17, language="en", plays=int(rng.integers(10, 10**6)),
                                  likes=int(rng.integers(0, 1000)), created_at=NOW - float(rng.integers(0, 60)) * DAY,
                                  duration_s=int(rng.integers(5, 120)))
        taste_of[video] = taste
    impressions, signals = [], []
    for s in range(sessions):
        session, taste = f"s{s}", int(rng.integers(4))
        for n, video in enumerate(rng.choice(list(vectors), per_session, replace=False)):
            video = int(video)
            liked = (taste_of[video] == taste) != (rng.random() < noise)
            at = NOW + s * 10_000 + n * 100
            impressions.append(LoggedImpression(session, video, at, int(liked)))
            signals.append(LoggedSignal(session, video, at + 30, 1 if liked else -1, liked))
    return RerankerLog(impressions, signals, vectors, facts, {})


def test_training_on_a_synthetic_log_ranks_positives_above_negatives():
    X, y, groups = examples_from_log(synthetic_log(seed=3))
    assert X.shape == (960, len(FEATURES)) and 0.2 < y.mean() < 0.5
    trained = fit(X, y, groups, seed=3)
    assert trained.metrics["validation_auc"] > 0.9 > trained.metrics["similarity_auc"]
    assert trained.n_examples == 960 and trained.n_positive == int(y.sum())
    assert trained.metrics["validation_examples"] + trained.metrics["train_examples"] == 960
    # Held-out synthetic rows (another log, another seed): the stored model generalises.
    from sklearn.metrics import roc_auc_score

    X_new, y_new, _ = examples_from_log(synthetic_log(seed=4))
    assert roc_auc_score(y_new, trained.model.score(X_new)) > 0.9
    # And it survives its bytes.
    again = LearnedScorer.from_bytes(trained.model.to_bytes(), FEATURES)
    assert np.array_equal(again.score(X_new), trained.model.score(X_new))


def test_training_is_deterministic_for_a_seed():
    X, y, groups = examples_from_log(synthetic_log(sessions=12, seed=5))
    first, second = fit(X, y, groups, seed=1), fit(X, y, groups, seed=1)
    assert first.metrics == second.metrics
    assert np.array_equal(first.model.score(X), second.model.score(X))


def test_training_refuses_too_few_examples_or_one_class():
    X, y, groups = examples_from_log(synthetic_log(sessions=8, seed=6))
    with pytest.raises(TrainingRefused, match="192 labelled impressions, fewer than the 200 needed"):
        fit(X, y, groups)
    X, y, groups = examples_from_log(synthetic_log(sessions=12, seed=6))
    with pytest.raises(TrainingRefused, match="each needs at least"):
        fit(X, np.zeros_like(y), groups)


def test_no_example_sees_its_own_outcome():
    # One session, two impressions of one taste: the first has no history yet, the second
    # sees the first's signal, never its own.
    log = synthetic_log(sessions=1, per_session=2, seed=7, noise=0)
    X, _, _ = examples_from_log(log)
    assert feature(X, "positive_similarity")[0] == feature(X, "negative_similarity")[0] == 0


# --- in the funnel ----------------------------------------------------------------------------

class ByFeature:
    """A stand-in for a fitted model: scores by one feature, so the order it must give is known."""

    def __init__(self, name):
        self.column = FEATURES.index(name)

    def score(self, X):
        return X[:, self.column]


def catalog(n=60, seed=0, histories=None, documents=None):
    vectors = cluster(e(0), n, 0.4, seed)
    ids = list(range(1, n + 1))
    facts = {i: VideoFacts(creator=i % 7, language="en", plays=i * 100, likes=(n - i) * 10, duration_s=30,
                           created_at=NOW - i * DAY) for i in ids}
    return InMemoryFunnelCatalog(ids, vectors, facts, {}, histories=histories, documents=documents)


def test_the_learned_reranker_orders_by_its_model_and_shows_the_features():
    assert "learned" in RERANKERS
    context = FunnelContext(catalog=catalog(), query=e(0), limit=10, now=NOW, reranker="learned",
                            learned_model=ByFeature("like_rate"))
    items = run_funnel(context)
    assert [c.id for c in items] == list(range(1, 11))  # like rate falls with the id
    assert set(items[0].parts) == set(FEATURES)
    assert [c.score for c in items] == sorted((c.score for c in items), reverse=True)


def test_the_learned_reranker_reads_co_occurrence_from_the_catalog():
    histories = {100: frozenset({"a", "b"}), 7: frozenset({"a", "b"}), 9: frozenset({"a", "me"})}
    cat = catalog(histories=histories)
    context = FunnelContext(catalog=cat, query=e(0), limit=3, now=NOW, reranker="learned", positive_ids=(100,),
                            session="me", learned_model=ByFeature("co_occurrence"))
    items = run_funnel(context)
    assert items[0].id == 7 and items[0].parts["co_occurrence"] == 1.0
    assert items[1].parts["co_occurrence"] == pytest.approx(0.5 ** 0.5 if items[1].id == 9 else 0.0)


def test_without_a_model_learned_falls_back_to_hand_weighted():
    hand = run_funnel(FunnelContext(catalog=catalog(), query=e(0), limit=10, now=NOW))
    learned = run_funnel(FunnelContext(catalog=catalog(), query=e(0), limit=10, now=NOW, reranker="learned"))
    assert [(c.id, c.score) for c in learned] == [(c.id, c.score) for c in hand]


def test_the_cross_encoder_reorders_the_head_only():
    documents = {i: f"video {i}" for i in range(1, 301)}
    cat = catalog(n=300, documents=documents)
    calls = []

    def prefers_odd(query, texts):
        calls.append((query, len(texts)))
        return np.array([1.0 if int(t.split()[1]) % 2 else 0.0 for t in texts])

    plain = run_funnel(FunnelContext(catalog=cat, query=e(0), limit=300, now=NOW))
    context = FunnelContext(catalog=cat, query=e(0), limit=300, now=NOW, cross_encoder=prefers_odd, query_text="q")
    items = run_funnel(context)
    assert calls == [("q", CROSS_ENCODER_TOP)]
    assert [s.name for s in context.stages] == ["recall", "rerank", "cross_encode", "rules", "top"]
    head = items[:CROSS_ENCODER_TOP]
    assert {c.id for c in head} == {c.id for c in plain[:CROSS_ENCODER_TOP]}
    assert all(c.parts["cross_encoder"] in (0.0, 1.0) for c in head)
    assert [c.score for c in head] == sorted((c.score for c in head), reverse=True)
    assert [c.id for c in head] != [c.id for c in plain[:CROSS_ENCODER_TOP]]
    assert [c.id for c in items[CROSS_ENCODER_TOP:]] == [c.id for c in plain[CROSS_ENCODER_TOP:len(items)]]
    assert "cross_encoder" not in items[CROSS_ENCODER_TOP].parts


def test_a_real_cross_encoder_from_a_local_folder_is_called_and_reorders_deterministically(tmp_path, settings):
    from algorithms.cross_encoder import cross_encoder_scorer
    from tests.unit.tiny_cross_encoder import build_tiny_cross_encoder

    topics = ["gym workout lifting", "street food noodles", "cat video funny", "dance music remix", "travel beach sunset"]
    documents = {i: f"{topics[i % 5]} clip {i}" for i in range(1, 301)}
    settings.CROSS_ENCODER_MODEL = str(build_tiny_cross_encoder(tmp_path / "ce", list(documents.values()) + ["gym"]))
    scorer = cross_encoder_scorer()
    calls = []

    def counted(query, texts):
        calls.append(len(texts))
        return scorer(query, texts)

    cat = catalog(n=300, documents=documents)
    plain = run_funnel(FunnelContext(catalog=cat, query=e(0), limit=10, now=NOW))
    pages = [run_funnel(FunnelContext(catalog=cat, query=e(0), limit=10, now=NOW, cross_encoder=counted,
                                      query_text="gym workout")) for _ in range(2)]
    assert calls == [CROSS_ENCODER_TOP, CROSS_ENCODER_TOP]
    assert [c.id for c in pages[0]] == [c.id for c in pages[1]]  # deterministic
    assert [c.id for c in pages[0]] != [c.id for c in plain]  # and it changed the order
    parts = [c.parts["cross_encoder"] for c in pages[0]]
    assert all(0 <= p <= 1 for p in parts) and max(parts) - min(parts) > 0.01
    reranked = {c.id: c.score for c in run_funnel(FunnelContext(catalog=cat, query=e(0), limit=300, now=NOW))}
    assert all(c.score == pytest.approx(reranked[c.id] + CROSS_ENCODER_WEIGHT * c.parts["cross_encoder"])
               for c in pages[0])
