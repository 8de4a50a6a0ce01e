"""manage.py evaluate_feed: the feed measured with tastes from the catalog's metadata."""
import json
from collections import Counter

import pytest
from django.core.management import CommandError, call_command

from algorithms.evaluation import extract_tastes
from catalog.models import Video
from feed.evaluation import catalog_videos
from feed.models import FeedSession
from tests.conftest import DEMO


@pytest.mark.parametrize("args, message", [
    (["--batches", "4", "--window", "3", "5"], "--window 3 5"),
    (["--window", "4", "3"], "--window 4 3"),
    (["--noise", "0.5"], "--noise"),
    (["--min-share", "0.3", "--max-share", "0.2"], "--min-share"),
    (["--viewers-per-taste", "0"], "--viewers-per-taste"),
    (["--algorithm", "nope"], "no algorithm 'nope'; known:"),
    (["--output", "report.txt"], "should end in .json"),
    (["--min-share", "0.5", "--max-share", "0.6"], "no taste"),
])
def test_bad_options_are_refused_with_a_reason(catalog_db, tmp_path, args, message):
    if "--output" not in args:
        args = [*args, "--output", str(tmp_path / "r.json")]
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("evaluate_feed", *args)


def test_an_empty_or_unembedded_catalog_is_refused(catalog_db, tmp_path):
    out = str(tmp_path / "r.json")
    Video.objects.update(embedding=None)
    with pytest.raises(CommandError, match="none of the catalog's 1000 videos is embedded yet: run `manage.py embed`"):
        call_command("evaluate_feed", "--output", out)
    Video.objects.all().delete()
    with pytest.raises(CommandError, match="the catalog is empty"):
        call_command("evaluate_feed", "--output", out)


@pytest.fixture
def demo_catalog(transactional_db):
    """The demo catalog (300 videos, 12 topics), embedded, and the shipped algorithms: evidence
    (the default) and seed-default, whatever an earlier test's flush left."""
    from algorithms.blueprints import LIBRARY_DIR, SEED_BLUEPRINT
    from algorithms.models import Algorithm
    from algorithms.services import save_blueprint
    from catalog.importers import import_records, read_records
    from catalog.models import Creator

    Video.objects.all().delete()
    Creator.objects.all().delete()
    records, _ = read_records(DEMO)
    import_records(records)
    call_command("embed", verbosity=0)
    if not Algorithm.objects.filter(slug="seed-default").exists():
        save_blueprint(SEED_BLUEPRINT, slug="seed-default")
    if not Algorithm.objects.filter(slug="evidence").exists():
        save_blueprint((LIBRARY_DIR / "evidence_default.json").read_text(), slug="evidence", make_default=True)


def test_on_the_demo_catalog_the_feed_finds_each_topic_far_above_chance(demo_catalog, tmp_path, capsys):
    # The demo's 12 topics come out as the tastes, each nearly all one topic (creators, under
    # 5 % each, are left out by --min-share).
    topic_of = {str(r["id"]): r["demoTopic"] for r in json.loads(DEMO.read_text())["collector"]}
    external = dict(Video.objects.values_list("id", "external_id"))
    tastes = extract_tastes(catalog_videos()[0], min_share=0.05)
    assert len(tastes) == 12
    topics = [Counter(topic_of[external[v]] for v in t.videos).most_common(1)[0] for t in tastes]
    assert len({topic for topic, _ in topics}) == 12
    assert all(count >= 0.9 * t.size for (_, count), t in zip(topics, tastes))

    output, again = tmp_path / "eval.json", tmp_path / "again.json"
    args = ["--viewers-per-taste", "1", "--batches", "6", "--window", "3", "6", "--min-share", "0.05", "--seed", "5"]
    call_command("evaluate_feed", *args, "--output", str(output))
    call_command("evaluate_feed", *args, "--output", str(again))

    printed = capsys.readouterr().out
    assert "on-topic share over batches 3-6" in printed and "mean over tastes" in printed
    result = json.loads(output.read_text())
    # Seeded: the same numbers every time (session and event ids come from the run's seed).
    assert json.loads(again.read_text()) == result
    assert output.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert len(result["tastes"]) == 12
    feeds = result["feeds"]
    assert set(feeds) == {"evidence", "seed-default", "random", "ceiling"}  # the default, then seed-default
    for slug in ("evidence", "seed-default"):
        mean = feeds[slug]["mean"]
        assert len(mean["per_batch"]) == 6
        # (Not bounded by the ceiling's window mean: the ceiling serves a small taste in batches
        # 1-5 and runs out; a feed that finds it in batch 2 still serves it in batch 6.)
        assert mean["window_mean"] >= 3 * feeds["random"]["mean"]["window_mean"], slug
        assert mean["lift"] >= 3, slug
    assert FeedSession.objects.count() == 0
