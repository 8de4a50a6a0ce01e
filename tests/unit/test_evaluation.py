"""The offline yardstick's plain parts (algorithms.evaluation) on small hand-made records."""
import numpy as np
import pytest

from algorithms.evaluation import (
    CatalogVideo,
    Report,
    Viewer,
    average,
    ceiling_per_batch,
    extract_tastes,
    random_per_batch,
    random_uuid,
    score,
    watch_ms,
)

N = 40


def catalog() -> list[CatalogVideo]:
    """40 videos. #fitness (0-7) and #workout (2-9) mostly co-occur; #gym (8, 9) lies inside
    them; #fyp (0-29) and #viral (10-13) ask for reach; #everything (0-19) is on half the
    catalog; #cooking (10-14) is all of @bob's videos; #origami (16, 17) is exactly the smallest
    share; #chess is on one video; @alice posts 20-23, @carol only 24."""
    tags = {
        "fitness": range(0, 8), "workout": range(2, 10), "gym": (8, 9), "fyp": range(0, 30),
        "viral": range(10, 14), "everything": range(0, 20), "cooking": range(10, 15), "origami": (16, 17),
        "chess": (15,),
    }
    creators = {**{i: "bob" for i in range(10, 15)}, **{i: "alice" for i in range(20, 24)}, 24: "carol"}
    return [
        CatalogVideo(i, creators.get(i, f"c{i}"), frozenset(t for t, ids in tags.items() if i in ids), 10_000)
        for i in range(N)
    ]


def test_tastes_merge_cooccurring_tags_skip_reach_tags_and_keep_within_the_shares():
    tastes = extract_tastes(catalog(), min_share=0.05, max_share=0.25)

    assert [(t.name, t.kind, t.size) for t in tastes] == [
        ("#fitness", "hashtag", 10), ("#cooking", "hashtag", 5), ("#origami", "hashtag", 2), ("@alice", "creator", 4),
    ]
    fitness = tastes[0]
    # #workout by Jaccard, #gym because all its videos are already in the taste.
    assert fitness.tags == ("fitness", "workout", "gym")
    assert fitness.videos == frozenset(range(10))
    assert fitness.share == 0.25
    # Reach tags and a tag on half the catalog are never tastes, nor merged into one; @bob is
    # #cooking (deduplicated); @carol and #chess are below the smallest share.
    names = {t.name for t in tastes}
    assert not names & {"#fyp", "#viral", "#everything", "@bob", "@carol", "#chess"}
    assert all("fyp" not in t.tags and "everything" not in t.tags for t in tastes)


def test_share_bounds():
    tastes = extract_tastes(catalog(), min_share=0.06, max_share=0.2)
    assert "#origami" not in {t.name for t in tastes}  # 5 % < 6 %
    assert all(0.06 <= t.share <= 0.2 for t in tastes)
    # Capped at 8 videos, #fitness cannot take in #workout; #workout's own taste is nearly
    # the same videos and is left out.
    assert [t.name for t in tastes] == ["#fitness", "#cooking", "@alice"]
    assert tastes[0].videos == frozenset(range(8))
    with pytest.raises(ValueError):
        extract_tastes(catalog(), min_share=0.3, max_share=0.2)


def test_a_creator_inside_a_topic_is_its_own_taste():
    videos = [v if v.id >= 4 else CatalogVideo(v.id, "timmy", v.hashtags, v.duration_ms) for v in catalog()]
    names = [t.name for t in extract_tastes(videos, min_share=0.05, max_share=0.25)]
    assert "@timmy" in names and "#fitness" in names


def test_watch_model_ranges():
    rng = np.random.default_rng(1)
    liked = [watch_ms(True, 10_000, rng) for _ in range(2000)]
    assert 9_000 <= min(liked) and max(liked) <= 25_000
    assert sum(w > 10_000 for w in liked) > 1500  # most liked videos are watched more than once
    assert all(500 <= watch_ms(False, 10_000, rng) <= 3_000 for _ in range(2000))
    assert all(500 <= watch_ms(False, 1_000, rng) <= 600 for _ in range(500))  # a short video: left within 600 ms
    assert all(500 <= watch_ms(False, 60_000, rng) <= 3_000 for _ in range(500))
    # An unknown length (0) counts as 15 s.
    assert all(13_500 <= watch_ms(True, 0, rng) <= 37_500 for _ in range(500))


def test_noise_flips_about_its_share_of_watches():
    rng = np.random.default_rng(2)
    liked_skipped = np.mean([watch_ms(True, 20_000, rng, noise=0.1) <= 3_000 for _ in range(5000)])
    disliked_watched = np.mean([watch_ms(False, 20_000, rng, noise=0.1) >= 18_000 for _ in range(5000)])
    assert 0.085 <= liked_skipped <= 0.115
    assert 0.085 <= disliked_watched <= 0.115
    assert not any(watch_ms(True, 20_000, rng, noise=0.0) <= 3_000 for _ in range(2000))


def test_viewer_likes_its_taste_and_is_seeded():
    taste = extract_tastes(catalog(), min_share=0.05, max_share=0.25)[1]  # #cooking
    a, b = Viewer(taste, np.random.default_rng(5), 0.1), Viewer(taste, np.random.default_rng(5), 0.1)
    assert a.likes(12) and not a.likes(0)
    assert [a.watch(i, 10_000) for i in range(20)] == [b.watch(i, 10_000) for i in range(20)]
    assert random_uuid(np.random.default_rng(7)) == random_uuid(np.random.default_rng(7))
    assert random_uuid(np.random.default_rng(7)) != random_uuid(np.random.default_rng(8))


def test_ceiling_is_exact_and_rare_tastes_run_out():
    assert ceiling_per_batch(12, 5, 4) == [1.0, 1.0, 0.4, 0.0]
    assert ceiling_per_batch(100, 5, 3) == [1.0, 1.0, 1.0]
    assert ceiling_per_batch(0, 5, 2) == [0.0, 0.0]
    s = score([ceiling_per_batch(12, 5, 4)], 0.1, ceiling_per_batch(12, 5, 4), (2, 4))
    assert s.window == pytest.approx(1.4 / 3)
    assert s.of_ceiling == pytest.approx(1.0)
    assert s.lift == pytest.approx(14 / 3)


def test_random_feed_never_repeats_and_is_seeded():
    ids, liked = list(range(20)), frozenset({1, 4, 6, 9, 11, 15, 19})
    shares = random_per_batch(ids, liked, 5, 4, np.random.default_rng(3))
    assert sum(shares) * 5 == pytest.approx(7)  # the whole catalog once: every liked video once
    assert shares == random_per_batch(ids, liked, 5, 4, np.random.default_rng(3))
    assert random_per_batch(ids, frozenset(ids), 5, 6, np.random.default_rng(3)) == [1.0] * 6  # past the catalog


def test_score_and_report(tmp_path):
    s = score([[1.0, 0.0], [0.0, 0.0]], 0.25, [1.0, 1.0], (1, 2))
    assert (s.per_batch, s.window, s.lift, s.of_ceiling) == ([0.5, 0.0], 0.25, 1.0, 0.25)

    tastes = extract_tastes(catalog(), min_share=0.05, max_share=0.25)
    report = Report(tastes, batches=2, window=(1, 2), batch_size=5)
    for feed in ("algo", "random", "ceiling"):
        report.scores[feed] = {t.name: score([[1.0, 0.5]], t.share, [1.0, 1.0], (1, 2)) for t in tastes}
    assert report.algorithms == ["algo"]
    data = report.as_dict()
    assert data["feeds"]["algo"]["mean"]["window_mean"] == 0.75
    assert [t["name"] for t in data["tastes"]] == [t.name for t in tastes]
    text = report.table()
    assert "mean over tastes" in text and "#fitness" in text
    report.plot(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_score_says_how_far_another_draw_of_viewers_could_move_it():
    # Two viewers at 1.0 and 0.0 over the window: the mean 0.5, its standard error 0.5 (of a
    # ceiling of 1); at a ceiling of 0.5 both double.
    s = score([[1.0, 1.0], [0.0, 0.0]], 0.25, [1.0, 1.0], (1, 2))
    assert (s.of_ceiling, s.of_ceiling_se) == (0.5, 0.5)
    assert score([[1.0, 1.0], [0.0, 0.0]], 0.25, [0.5, 0.5], (1, 2)).of_ceiling_se == 1.0
    # Viewers who agree leave no doubt; one viewer gives no spread to measure.
    assert score([[0.5, 0.5], [0.5, 0.5]], 0.25, [1.0, 1.0], (1, 2)).of_ceiling_se == 0.0
    assert score([[1.0, 0.0]], 0.25, [1.0, 1.0], (1, 2)).of_ceiling_se == 0.0
    # Over tastes, independent errors add in quadrature: two tastes of 0.5 each -> 0.5 / sqrt(2).
    assert average([s, s]).of_ceiling_se == pytest.approx(0.5 / 2 ** 0.5)

    tastes = extract_tastes(catalog(), min_share=0.05, max_share=0.25)
    report = Report(tastes, batches=2, window=(1, 2), batch_size=5)
    for feed in ("algo", "random", "ceiling"):
        report.scores[feed] = {t.name: s for t in tastes}
    assert report.as_dict()["feeds"]["algo"]["mean"]["of_ceiling_se"] == round(0.5 / len(tastes) ** 0.5, 4)
    assert f"algo: 50.0% of the ceiling, standard error {100 * 0.5 / len(tastes) ** 0.5:.1f} points" in report.table()
