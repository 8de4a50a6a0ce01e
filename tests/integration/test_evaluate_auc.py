"""manage.py evaluate_auc end to end with the real model, and movielens_to_jsonl."""
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

TOPICS = {
    "cooking": ["pasta with garlic sauce", "roast chicken dinner", "chocolate cake recipe", "vegetable soup",
                "homemade pizza dough", "grilled salmon", "beef stew", "pancakes for breakfast"],
    "football": ["penalty kick goal", "league match highlights", "goalkeeper saves", "transfer news striker",
                 "world cup final", "midfield passing drills", "referee red card", "derby match fans"],
    "programming": ["python list comprehension", "debugging a segfault", "git merge conflict", "sql join tutorial",
                    "rust borrow checker", "unit testing in java", "docker container setup", "javascript promises"],
    "gardening": ["planting tomato seedlings", "pruning rose bushes", "compost for the garden", "watering succulents",
                  "growing herbs indoors", "lawn mowing tips", "orchid care", "raised vegetable beds"],
}


def write(folder, items, events):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in items))
    (folder / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in events))
    return str(folder / "items.jsonl"), str(folder / "events.jsonl")


def topical_dataset(folder, users=120, seed=0):
    """Each user engages with one topic; the test positive is another item of it. Popularity
    misleads: three off-topic "viral" items are in almost everyone's history, and stand among
    the test negatives (with the other topics' items), so only the user's taste tells them apart.
    One tested user's history holds only an item without text."""
    rng = np.random.default_rng(seed)
    items = [{"id": f"{t}-{i}", "text": text} for t, texts in TOPICS.items() for i, text in enumerate(texts)]
    items += [{"id": f"viral-{i}", "text": f"viral dance challenge number {i}"} for i in range(3)]
    items.append({"id": "blank", "text": "   "})
    topics = list(TOPICS)
    events = []
    for u in range(users):
        topic = topics[u % len(topics)]
        order = rng.permutation(len(TOPICS[topic]))
        history = [f"{topic}-{i}" for i in order[:4]] + [f"viral-{i}" for i in range(3) if rng.random() < 0.9]
        rng.shuffle(history)
        events += [{"user": f"u{u}", "item": item, "label": 1, "split": "history"} for item in history]
        if u % 2 == 0:
            events.append({"user": f"u{u}", "item": f"{topic}-{order[4]}", "label": 1, "split": "test"})
            others = [f"{t}-{i}" for t in topics if t != topic for i in range(0, 8, 3)]
            events += [{"user": f"u{u}", "item": item, "label": 0, "split": "test"} for item in others]
    events += [{"user": "textless", "item": "blank", "label": 1, "split": "history"},
               {"user": "textless", "item": "cooking-0", "label": 1, "split": "test"}]
    return write(folder, items, events)


def test_the_hybrid_beats_random_and_popularity_on_a_dataset_built_for_it(tmp_path):
    items, events = topical_dataset(tmp_path / "data")
    report = tmp_path / "report"
    call_command("evaluate_auc", "--items", items, "--events", events, "--report", str(report),
                 "--test-negatives", "12", verbosity=0)
    result = json.loads((report / "evaluate_auc.json").read_text())
    assert set(result) == {"settings", "dataset", "methods", "hybrid", "roc", "timings_s"}
    methods = result["methods"]
    assert set(methods) == {"random", "popularity", "content", "cooccurrence", "hybrid"}
    for values in methods.values():
        assert {"auc", "ndcg@10", "recall@10", "recall@50", "users_auc", "users_ranked"} <= set(values)
    assert result["dataset"]["tested_users"] == 61
    assert result["dataset"]["tested_users_without_text"] == 1
    assert result["dataset"]["users_given_negatives"] == 1  # the textless user had only a positive
    assert result["dataset"]["items_without_text"] == 1
    assert methods["hybrid"]["auc"] > methods["random"]["auc"] + 0.25
    assert methods["hybrid"]["auc"] > methods["popularity"]["auc"] + 0.1
    assert methods["content"]["auc"] > methods["random"]["auc"] + 0.1  # the real model tells topics apart
    assert result["hybrid"]["features"][:3] == ["popularity", "content", "cooccurrence"]
    assert (report / "evaluate_auc_roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_input_is_refused_naming_the_line(tmp_path):
    items, events = write(tmp_path, [{"id": "a", "text": "x"}],
                          [{"user": "u", "item": "a", "label": 1, "split": "history"},
                           {"user": "u", "item": "b", "label": 1, "split": "test"}])
    with pytest.raises(CommandError, match=r"events.jsonl:2: item 'b' is not in"):
        call_command("evaluate_auc", "--items", items, "--events", events, "--report", str(tmp_path / "r"))
    with pytest.raises(CommandError, match="--train-negatives must be at least 1"):
        call_command("evaluate_auc", "--items", items, "--events", events, "--train-negatives", "0")


def test_movielens_to_jsonl(tmp_path):
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "movies.csv").write_text("movieId,title,genres\n1,Alpha (1990),Comedy|Drama\n2,Beta (1991),(no genres listed)\n"
                                   "3,\"Gamma, The (1992)\",Horror\n4,Delta (1993),Action\n5,Eps (1994),Action\n")
    (ml / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,Funny,5\n2,1,funny,6\n2,1,dark,7\n")
    (ml / "ratings.csv").write_text("userId,movieId,rating,timestamp\n"
                                    "1,1,5.0,10\n1,2,2.0,11\n1,3,4.5,12\n1,4,1.0,13\n"  # tested: 3 is the last engagement
                                    "2,1,4.0,10\n2,5,3.0,11\n")  # one engagement: history only
    out = tmp_path / "out"
    call_command("movielens_to_jsonl", str(ml), str(out), "--per-user", "5", verbosity=0)
    items = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert items[0] == {"id": "1", "text": "Alpha (1990) | genres: Comedy, Drama | tags: funny, dark"}
    assert items[1] == {"id": "2", "text": "Beta (1991)"}
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    user1 = [(e["item"], e["label"], e["split"]) for e in events if e["user"] == "1"]
    # History before the last engagement; the later low rating (movie 4) is left out; movie 5, never
    # rated by user 1, is the only negative left to draw.
    assert user1 == [("1", 1, "history"), ("2", 0, "history"), ("3", 1, "test"), ("5", 0, "test")]
    assert [(e["item"], e["label"], e["split"]) for e in events if e["user"] == "2"] == [
        ("1", 1, "history"), ("5", 0, "history")]
    with pytest.raises(CommandError, match="movies.csv is missing"):
        call_command("movielens_to_jsonl", str(tmp_path), str(out))
