"""MovieLens (ml-latest-small's CSV layout) to the neutral format.

- items: every movie, its text ``"{title} | genres: {g1, g2} | tags: {t1, t2}"`` (genres
  unless "(no genres listed)"; the ``MAX_TAGS`` most used tags of the movie, by anyone);
- engagement: a rating of at least ``min_rating`` (4 by default) is label 1, a lower one 0;
- per user, ratings in time order (timestamp, then movie id). A user with at least two
  engagements is tested: the last engagement is the test positive, with ``negatives_per_user``
  negatives drawn (seeded, ``uniform`` or ``popularity``-proportional over the history split's
  engagements) from movies the user never rated; the ratings before it are the history, those
  after it (all below ``min_rating``) are left out. Other users' ratings are all history.
"""
from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from .scoring import sample_negatives, sampling_cdf

MAX_TAGS = 10
NO_GENRES = "(no genres listed)"


def movie_texts(directory: Path) -> dict[str, str]:
    tags: dict[str, Counter] = defaultdict(Counter)
    tags_path = directory / "tags.csv"
    if tags_path.exists():
        with open(tags_path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                tag = row["tag"].strip()
                if tag:
                    tags[row["movieId"]][tag.lower()] += 1
    texts = {}
    with open(directory / "movies.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            parts = [row["title"].strip()]
            genres = [g for g in row["genres"].split("|") if g and g != NO_GENRES]
            if genres:
                parts.append("genres: " + ", ".join(genres))
            top = [t for t, _ in sorted(tags[row["movieId"]].items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TAGS]]
            if top:
                parts.append("tags: " + ", ".join(top))
            texts[row["movieId"]] = " | ".join(parts)
    return texts


def convert(directory: Path, out: Path, *, negatives: str = "uniform", negatives_per_user: int = 100,
            min_rating: float = 4.0, seed: int = 0) -> dict:
    """Write ``out/items.jsonl`` and ``out/events.jsonl``; return counts."""
    directory, out = Path(directory), Path(out)
    for name in ("movies.csv", "ratings.csv"):
        if not (directory / name).exists():
            raise FileNotFoundError(f"{directory / name} is missing: expected MovieLens's CSV layout (movies.csv, ratings.csv, tags.csv)")
    texts = movie_texts(directory)
    movie_ids = list(texts)
    index = {m: i for i, m in enumerate(movie_ids)}

    ratings: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # user -> (timestamp, movie, label)
    with open(directory / "ratings.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            movie = index.get(row["movieId"])
            if movie is None:
                continue
            ratings[row["userId"]].append((int(row["timestamp"]), movie, int(float(row["rating"]) >= min_rating)))

    # Split first (history vs the test positive), then count popularity on the history only.
    split: dict[str, tuple[list[tuple[int, int]], int | None]] = {}
    popularity = np.zeros(len(movie_ids), dtype=np.int64)
    for user, rows in ratings.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        engaged = [i for i, r in enumerate(rows) if r[2] == 1]
        if len(engaged) >= 2:
            last = engaged[-1]
            history, test = [(m, y) for _, m, y in rows[:last]], rows[last][1]
        else:
            history, test = [(m, y) for _, m, y in rows], None
        split[user] = (history, test)
        for m, y in history:
            popularity[m] += y

    cdf = sampling_cdf(negatives, popularity)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "items.jsonl", "w", encoding="utf-8") as f:
        for movie in movie_ids:
            f.write(json.dumps({"id": movie, "text": texts[movie]}, ensure_ascii=False) + "\n")
    counts = Counter()
    with open(out / "events.jsonl", "w", encoding="utf-8") as f:
        for user in sorted(split, key=int):
            history, test = split[user]
            for movie, label in history:
                f.write(json.dumps({"user": user, "item": movie_ids[movie], "label": label, "split": "history"}) + "\n")
            counts["history_events"] += len(history)
            if test is None:
                continue
            rated = np.array([m for _, m, _ in ratings[user]], dtype=np.int64)
            drawn = sample_negatives(rng, cdf, rated, negatives_per_user)
            f.write(json.dumps({"user": user, "item": movie_ids[test], "label": 1, "split": "test"}) + "\n")
            for movie in drawn.tolist():
                f.write(json.dumps({"user": user, "item": movie_ids[movie], "label": 0, "split": "test"}) + "\n")
            counts["tested_users"] += 1
            counts["test_rows"] += 1 + len(drawn)
    return {"items": len(movie_ids), "users": len(split), **counts}
