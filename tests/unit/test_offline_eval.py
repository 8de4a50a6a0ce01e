"""The offline evaluation's plain parts (algorithms.offline_eval) on small hand-made data."""
import json
import math

import numpy as np
import pytest

from algorithms.offline_eval.data import DatasetError, load_dataset
from algorithms.offline_eval.metrics import auc, mean_roc_curve, ndcg_and_recall, per_query_auc, summarize
from algorithms.offline_eval.run import Settings, evaluate, train_hybrid
from algorithms.offline_eval.scoring import (FEATURES, History, Queries, features, sample_negatives, sampling_cdf,
                                             training_queries)
from algorithms.ranking.learned_scorer import LearnedScorer


def write_dataset(tmp_path, items, events, name="d"):
    """``items``: {id: text}; ``events``: (user, item, label, split) tuples in time order."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "items.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in items.items()))
    (folder / "events.jsonl").write_text("".join(
        json.dumps({"user": u, "item": i, "label": y, "split": s}) + "\n" for u, i, y, s in events))
    return folder / "items.jsonl", folder / "events.jsonl"


def column(name):
    return FEATURES.index(name)


# --- metrics ---

def test_auc_of_a_perfect_scorer_is_1_of_a_reversed_one_0_of_a_constant_one_half():
    labels = np.array([1, 0, 1, 0, 0])
    perfect = np.array([0.9, 0.1, 0.8, 0.2, 0.3])
    assert auc(perfect, labels) == 1.0
    assert auc(-perfect, labels) == 0.0
    assert auc(np.zeros(5), labels) == 0.5
    # One positive above two of three negatives: 2/3.
    assert auc(np.array([0.5, 0.6, 0.4, 0.1]), np.array([1, 0, 0, 0])) == pytest.approx(2 / 3)
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([1, 1])))
    assert math.isnan(auc(np.array([0.1, 0.2]), np.array([0, 0])))


def test_ndcg_and_recall_by_hand():
    # Query 0: positives ranked 2nd and 4th of 4. Query 1: its one positive ranked 1st of 3.
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.1, 0.2])
    labels = np.array([0, 1, 0, 1, 1, 0, 0])
    offsets = np.array([0, 4, 7])
    out = ndcg_and_recall(scores, labels, offsets, np.zeros(7), ndcg_k=3, recall_ks=(2, 3))
    dcg = 1 / math.log2(3)  # the 4th is past k=3
    idcg = 1 + 1 / math.log2(3)
    assert out["ndcg@3"][0] == pytest.approx(dcg / idcg)
    assert out["ndcg@3"][1] == pytest.approx(1.0)
    assert out["recall@2"].tolist() == [0.5, 1.0]
    assert out["recall@3"].tolist() == [0.5, 1.0]


def test_a_query_without_positive_has_no_ndcg_and_is_left_out_of_the_mean():
    scores = np.array([0.9, 0.1, 0.5, 0.4])
    labels = np.array([1, 0, 0, 0])
    offsets = np.array([0, 2, 4])
    summary = summarize(scores, labels, offsets, np.zeros(4), ndcg_k=10, recall_ks=(10,))
    assert summary["auc"] == 1.0 and summary["ndcg@10"] == 1.0 and summary["recall@10"] == 1.0
    assert summary["users_auc"] == 1 and summary["users_ranked"] == 1


def test_ties_are_broken_by_the_tiebreak_order_not_by_row_order():
    scores = np.zeros(3)
    labels = np.array([0, 0, 1])
    offsets = np.array([0, 3])
    first = ndcg_and_recall(scores, labels, offsets, np.array([0.5, 0.6, 0.1]), ndcg_k=1, recall_ks=(1,))
    last = ndcg_and_recall(scores, labels, offsets, np.array([0.1, 0.2, 0.9]), ndcg_k=1, recall_ks=(1,))
    assert first["recall@1"][0] == 1.0 and last["recall@1"][0] == 0.0


def test_the_mean_roc_curve_encloses_the_mean_auc():
    rng = np.random.default_rng(0)
    labels = (rng.random(300) < 0.2).astype(np.int8)
    scores = labels * 0.5 + rng.random(300)
    offsets = np.arange(0, 301, 30)
    curve = mean_roc_curve(scores, labels, offsets, grid=np.linspace(0, 1, 2001))
    area = float(np.sum((curve[1:] + curve[:-1]) / 2) / 2000)
    assert area == pytest.approx(np.nanmean(per_query_auc(scores, labels, offsets)), abs=0.01)
    assert curve[0] >= 0 and curve[-1] == pytest.approx(1.0)


# --- loading ---

@pytest.mark.parametrize("line, message", [
    ("not json", "events.jsonl:2: not JSON"),
    ('{"user": "u", "item": "zz", "label": 1, "split": "test"}', "events.jsonl:2: item 'zz' is not in"),
    ('{"user": "u", "item": "a", "label": 2, "split": "test"}', "'label' must be 1 or 0, got 2"),
    ('{"user": "u", "item": "a", "label": true, "split": "test"}', "'label' must be 1 or 0, got True"),
    ('{"user": "u", "item": "a", "label": 1, "split": "train"}', "'split' must be 'history' or 'test'"),
    ('{"item": "a", "label": 1, "split": "test"}', "'user' must be a non-empty string or an integer"),
    ('[1, 2]', "expected a JSON object, got list"),
])
def test_bad_events_stop_the_load_naming_the_line(tmp_path, line, message):
    items, events = write_dataset(tmp_path, {"a": "x", "b": "y"}, [("u", "b", 1, "history")])
    events.write_text(events.read_text() + line + "\n")
    with pytest.raises(DatasetError, match=message):
        load_dataset(items, events)


def test_bad_items_and_a_dataset_without_test_rows_are_refused(tmp_path):
    items, events = write_dataset(tmp_path, {"a": "x"}, [("u", "a", 1, "history")])
    with pytest.raises(DatasetError, match="no test rows"):
        load_dataset(items, events)
    items.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(DatasetError, match="items.jsonl:2: item 'a' already appeared on line 1"):
        load_dataset(items, events)
    with pytest.raises(DatasetError, match="cannot read the items file"):
        load_dataset(tmp_path / "missing.jsonl", events)


def test_the_loader_keeps_history_order_and_integer_ids_as_strings(tmp_path):
    items, events = write_dataset(tmp_path, {1: "one", 2: "two", 3: "", 4: "four"}, [
        (7, 2, 1, "history"), (7, 3, 0, "history"), (7, 1, 1, "history"), (7, 2, 1, "history"),
        (7, 4, 1, "test"), (7, 3, 0, "test"), (8, 1, 1, "history"),
    ])
    ds = load_dataset(items, events)
    assert ds.item_ids == ["1", "2", "3", "4"] and ds.user_ids == ["7", "8"] and ds.texts[2] == ""
    assert ds.history[0].tolist() == [1, 0]  # first engagement first, the repeat dropped
    assert sorted(ds.history_seen[0].tolist()) == [0, 1, 2]
    assert ds.test_items[0].tolist() == [3, 2] and ds.test_labels[0].tolist() == [1, 0]
    assert ds.tested_users().tolist() == [0]
    assert ds.history_events == 5


# --- scoring ---

def small_history():
    # Users 0-2 over items 0-4. Item 0 is engaged by everyone, item 4 by nobody.
    histories = [np.array([0, 1]), np.array([0, 1, 2]), np.array([0, 3])]
    return histories, History.build(histories, 5)


def test_cooccurrence_reads_other_users_histories_only():
    histories, history = small_history()
    # User 0 (history [0, 1]) scored on items 2, 3, 4 and on its own item 1.
    queries = Queries.build([0], [histories[0]], [np.array([2, 3, 4, 1])], [np.array([1, 0, 0, 0])])
    embeddings = np.eye(5, 4, dtype=np.float32)
    out = features(queries, history, embeddings, np.ones(5, bool))
    pop = np.array([3, 2, 1, 1, 0])
    w = 1 / np.sqrt(pop.clip(1))
    # By hand: other users are 1 ([0, 1, 2]) and 2 ([0, 3]).
    # item 2: user 1 holds it with items 0 and 1 -> (w0 + w1) * w2; item 3: user 2 with item 0 -> w0 * w3;
    # item 1: user 1 with 0 and 1 -> (w0 + w1) * w1 (user 0's own row is not counted).
    expected = [(w[0] + w[1]) * w[2], w[0] * w[3], 0.0, (w[0] + w[1]) * w[1]]
    assert out[:, column("cooccurrence")] == pytest.approx(expected, rel=1e-5)
    # Popularity leaves the user's own engagement out: item 1 has 2 engagers, one is user 0.
    assert out[:, column("popularity")].tolist() == [1, 1, 0, 1]
    assert out[:, column("history_length")].tolist() == [2, 2, 2, 2]


def test_content_is_the_cosine_to_the_mean_of_the_history_items_with_text():
    histories = [np.array([0, 1, 2]), np.array([2])]
    history = History.build(histories, 4)
    embeddings = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0], [0.6, 0.8, 0]], dtype=np.float32)
    has_text = np.array([True, True, False, True])  # item 2 has no text
    queries = Queries.build([0, 1], histories, [np.array([3, 2]), np.array([3, 0])],
                            [np.array([1, 0]), np.array([1, 0])])
    out = features(queries, history, embeddings, has_text)
    interest = np.array([1, 1, 0]) / math.sqrt(2)
    assert out[0, column("content")] == pytest.approx(float(interest @ embeddings[3]))
    assert out[0, column("content_max")] == pytest.approx(0.8)
    # User 1's only history item has no text: no interest vector, content 0.
    assert out[2:, column("content")].tolist() == [0.0, 0.0]
    assert out[:, column("has_interest")].tolist() == [1, 1, 0, 0]


def test_negatives_are_distinct_never_excluded_and_popularity_never_draws_an_unengaged_item():
    rng = np.random.default_rng(0)
    uniform = sampling_cdf("uniform", np.array([5, 0, 1, 1, 3, 0]))
    drawn = sample_negatives(rng, uniform, np.array([0, 2]), 4)
    assert sorted(drawn.tolist()) == [1, 3, 4, 5]
    assert sorted(sample_negatives(rng, uniform, np.array([0, 2]), 10).tolist()) == [1, 3, 4, 5]  # all there is
    popular = sampling_cdf("popularity", np.array([5, 0, 1, 1, 3, 0]))
    for _ in range(20):
        drawn = sample_negatives(rng, popular, np.array([4]), 3)
        assert sorted(drawn.tolist()) == [0, 2, 3]
    counts = np.bincount(np.concatenate([sample_negatives(rng, popular, np.array([], dtype=np.int64), 1)
                                         for _ in range(2000)]), minlength=6)
    assert counts[1] == counts[5] == 0 and counts[0] > 3 * counts[2]
    with pytest.raises(ValueError, match="uniform or popularity"):
        sampling_cdf("zipf", np.ones(3))


def test_training_queries_hold_out_the_last_engagements_against_unseen_negatives():
    histories = [np.array([3, 1, 4]), np.array([2]), np.array([0, 5])]
    seen = [np.array([1, 3, 4, 6]), np.array([2]), np.array([0, 5])]
    cdf = sampling_cdf("uniform", np.ones(8, dtype=np.int64))
    queries = training_queries(histories, seen, cdf, np.random.default_rng(0), holdout=1, negatives=3, max_users=10)
    assert queries.users.tolist() == [0, 2]  # user 1 has a single engagement: nothing to hold out
    assert queries.histories[0].tolist() == [3, 1] and queries.histories[1].tolist() == [0]
    rows0 = queries.items[queries.offsets[0]:queries.offsets[1]]
    assert rows0[0] == 4 and queries.labels[queries.offsets[0]] == 1
    assert not set(rows0[1:].tolist()) & {1, 3, 4, 6} and len(rows0) == 4


def test_learned_scorer_checks_its_features():
    rng = np.random.default_rng(0)
    x = rng.random((200, 2)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int8)
    scorer = LearnedScorer.fit(x, y, ("a", "b"))
    scores = scorer.score(x)
    assert auc(scores, y) > 0.95
    with pytest.raises(ValueError, match=r"\(rows, 2\) features matrix \(a, b\)"):
        scorer.score(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="both positive and negative"):
        LearnedScorer.fit(x, np.ones(200), ("a", "b"))
    assert scorer.describe()["features"] == ["a", "b"]


# --- whole runs ---

def clustered(tmp_path, *, name="d", poison=False, users=60, seed=0):
    """Items 0-39 in 4 topics of 10 (embedding = the topic's axis); each user engages with one
    topic. The test positive is from the user's topic, the negatives from the others.
    ``poison`` flips every test label and swaps the test items."""
    rng = np.random.default_rng(seed)
    items = {f"i{i}": f"topic {i // 10} item {i}" for i in range(40)}
    events = []
    for u in range(users):
        topic = u % 4
        liked = rng.permutation(10)[:6] + 10 * topic
        events += [(f"u{u}", f"i{i}", 1, "history") for i in liked[:5]]
        if u < users // 2:
            others = [i for i in range(40) if i // 10 != topic][:10]
            test = [(f"i{liked[5]}", 1)] + [(f"i{i}", 0) for i in others]
            if poison:
                test = [(f"i{(int(i[1:]) + 7) % 40}", 1 - y) for i, y in test]
            events += [(f"u{u}", i, y, "test") for i, y in test]
    return write_dataset(tmp_path, items, events, name)


def topic_embeddings(ds):
    out = np.zeros((ds.n_items, 4), dtype=np.float32)
    for i, item in enumerate(ds.item_ids):
        out[i, int(item[1:]) // 10] = 1.0
    return out


def test_the_hybrid_never_reads_test_rows(tmp_path):
    clean = load_dataset(*clustered(tmp_path, name="clean"))
    poisoned = load_dataset(*clustered(tmp_path, name="poisoned", poison=True))
    assert [t.tolist() for t in clean.test_labels] != [t.tolist() for t in poisoned.test_labels]
    probe = np.random.default_rng(1).random((50, len(FEATURES))).astype(np.float32)
    scores = []
    for ds in (clean, poisoned):
        history = History.build(ds.history, ds.n_items)
        cdf = sampling_cdf("uniform", history.popularity)
        model, _ = train_hybrid(ds, history, topic_embeddings(ds), np.ones(ds.n_items, bool), cdf, Settings())
        scores.append(model.score(probe))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_popularity_is_counted_on_the_history_split_only(tmp_path):
    # Item "hot" is every test positive but nobody's history: popularity scores it 0.
    items = {"hot": "a", "x": "b", "y": "c"}
    events = [("u1", "x", 1, "history"), ("u2", "x", 1, "history"), ("u2", "y", 1, "history"),
              ("u1", "hot", 1, "test"), ("u1", "y", 0, "test"), ("u2", "hot", 1, "test"), ("u3", "hot", 1, "test"),
              ("u3", "x", 0, "test")]
    ds = load_dataset(*write_dataset(tmp_path, items, events))
    history = History.build(ds.history, ds.n_items)
    assert history.popularity.tolist() == [0, 2, 1]


def test_a_whole_run_reports_every_method_and_counts_users_without_text(tmp_path):
    items, events = clustered(tmp_path, users=80)
    ds = load_dataset(items, events)
    # Two extra tested users: one whose history items have no text, one without any history.
    ds.texts.append("")
    ds.item_ids.append("blank")
    embeddings = np.r_[topic_embeddings(load_dataset(items, events)), np.zeros((1, 4), np.float32)]
    for history in (np.array([40]), np.zeros(0, dtype=np.int64)):
        ds.user_ids.append(f"extra{len(ds.user_ids)}")
        ds.history.append(history)
        ds.history_seen.append(history)
        ds.test_items.append(np.array([0]))
        ds.test_labels.append(np.array([1], dtype=np.int8))
    report = evaluate(ds, embeddings, Settings(test_negatives=10))
    assert set(report.methods) == {"random", "popularity", "content", "cooccurrence", "hybrid"}
    assert report.dataset["tested_users"] == 42
    assert report.dataset["tested_users_without_text"] == 2
    assert report.dataset["tested_users_without_history"] == 1
    assert report.dataset["users_given_negatives"] == 2
    assert report.methods["content"]["auc"] > 0.9
    assert report.methods["hybrid"]["auc"] > report.methods["random"]["auc"] + 0.3
    assert report.methods["hybrid"]["auc"] > report.methods["popularity"]["auc"]
    assert "hybrid" in report.table() and len(report.as_dict()["roc"]["tpr"]["hybrid"]) == 101
