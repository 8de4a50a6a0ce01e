"""The shipped default algorithm ("evidence") on the real catalog, through the feed's services."""
import uuid

import numpy as np

from algorithms.models import Algorithm
from algorithms.selectors import default_algorithm, load_blueprint
from catalog.models import Video
from feed import services

FITNESS_TAGS = ["fitness", "workout", "gym", "bodybuilding", "powerlifting", "fittok", "deadlift"]


def test_evidence_is_the_default_and_seed_default_is_kept(catalog_db):
    assert default_algorithm().slug == "evidence"
    seed = load_blueprint(Algorithm.objects.get(slug="seed-default"))
    assert [s.name for s in seed.states] == ["0", "H", "M", "L", "L-R"]
    evidence = load_blueprint(default_algorithm())
    assert evidence.signal("SKIP").polarity == -1 and evidence.signal("SKIP").weight > 0
    assert evidence.thresholds.relative
    assert all(s.batch_params.score_last_n > 0 and s.batch_params.creator_cap > 0 for s in evidence.states)


def test_the_migrations_ship_evidence_as_its_blueprint_file(db):
    # The library's file is what a fresh database gets (0005, then the tuning of 0007, 0009, 0011, 0012 and 0013).
    import json

    from algorithms.blueprints import LIBRARY_DIR

    shipped = {node["name"]: node["params"] for node in
               json.loads((LIBRARY_DIR / "evidence_default.json").read_text())["nodes"]}
    migrated = {state.name: state.params for state in Algorithm.objects.get(slug="evidence").states.all()}
    assert migrated == shipped and shipped["focus"]["tag_weight"] > 0 and shipped["focus"]["corroboration"] > 0
    assert all(params["relative_coverage"] is True for params in shipped.values())


def test_a_viewer_who_skips_everything_of_one_kind_stops_being_served_it(catalog_db):
    fitness = set(Video.objects.filter(hashtags__name__in=FITNESS_TAGS).values_list("id", flat=True))
    assert 0.1 < len(fitness) / Video.objects.count() < 0.2  # about one video in seven
    session = services.start_session(algorithm="evidence", session_id=uuid.UUID(int=20261202))
    rng = np.random.default_rng(5)
    served_per_batch = []
    for _ in range(10):
        batch = services.next_batch(session.id)
        served_per_batch.append([item.video.pk in fitness for item in batch.items])
        for item in batch.items:
            duration_ms = item.video.duration_s * 1000
            watched = int(rng.integers(500, 1500)) if item.video.pk in fitness else duration_ms * 2
            services.record_view(session.id, video_id=item.video.pk, event_id=uuid.UUID(int=int(rng.integers(2**62))),
                                 watched_ms=max(1, min(watched, services.max_watched_ms(item.video.duration_s))))
    later = [hit for batch in served_per_batch[5:] for hit in batch]
    assert sum(later) <= 1, served_per_batch  # 25 cards; chance alone would serve about 3 or 4


def test_the_signals_ranking_reads_carry_their_video_and_its_creator(catalog_db):
    # creator_trust counts a creator's long watches, and tag evidence reads the videos' hashtags:
    # the history must say which videos they were and whose.
    session = services.start_session(algorithm="evidence", session_id=uuid.UUID(int=20261203))
    batch = services.next_batch(session.id)
    for n, item in enumerate(batch.items[:3]):
        watched = item.video.duration_s * 1000 * (2 if n % 2 == 0 else 0) + 500
        services.record_view(session.id, video_id=item.video.pk, event_id=uuid.UUID(int=n + 1),
                             watched_ms=min(watched, services.max_watched_ms(item.video.duration_s)))
    from feed.models import FeedSession
    stored = FeedSession.objects.select_related("algorithm").get(pk=session.id)
    signals, _, _ = services._history(stored, load_blueprint(stored.algorithm), 10)
    assert [s.creator for s in signals] == [item.video.creator_id for item in batch.items[:3]]
    assert [s.video for s in signals] == [item.video.pk for item in batch.items[:3]]
    assert [s.polarity for s in signals] == [1, -1, 1]
