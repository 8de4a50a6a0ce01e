import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from algorithms.models import Algorithm
from catalog.models import Video
from feed import simulation


class Command(BaseCommand):
    help = (
        "Simulated viewers with hidden interests watch the catalog through the feed services; "
        "prints per-batch precision of liked videos against a random feed and writes JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--algorithm", default=None, help="slug (default: the default algorithm)")
        parser.add_argument("--viewers", type=int, default=20)
        parser.add_argument("--batches", type=int, default=10)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--liked-share", type=float, default=0.08, help="share of the catalog each viewer likes")
        parser.add_argument("--output", default="var/simulate.json")

    def handle(self, *args, algorithm, viewers, batches, seed, liked_share, output, **options):
        algo = Algorithm.objects.filter(slug=algorithm).first() if algorithm else Algorithm.objects.filter(is_default=True).first()
        if algo is None:
            raise CommandError(f"no algorithm {algorithm!r}; known: {', '.join(Algorithm.objects.values_list('slug', flat=True))}")
        if viewers < 1 or batches < 1:
            raise CommandError("--viewers and --batches must be at least 1")
        rows = list(Video.objects.filter(embedding__isnull=False).values_list("id", "embedding"))
        if len(rows) < algo.batch_size * batches:
            raise CommandError(f"only {len(rows)} embedded videos: import and embed a catalog first")
        ids = np.array([pk for pk, _ in rows])
        vectors = np.array([v for _, v in rows], dtype=np.float32)
        rng = np.random.default_rng(seed)
        people = simulation.make_viewers(ids, vectors, viewers, rng, liked_share)

        feed = np.zeros((viewers, batches))
        baseline = np.zeros((viewers, batches))
        state_counts: list[dict[str, int]] = [{} for _ in range(batches)]
        for n, viewer in enumerate(people):
            precision, states = simulation.run_algorithm(viewer, algo.slug, batches, rng)
            feed[n] = precision
            baseline[n] = simulation.run_random(viewer, batches, algo.batch_size, rng)
            for b, state in enumerate(states):
                state_counts[b][state] = state_counts[b].get(state, 0) + 1
            if options["verbosity"] > 1:
                self.stdout.write(f"viewer {n + 1}/{viewers}: {np.mean(precision):.2f}")

        self.stdout.write(f"{algo.slug}: {viewers} viewers x {batches} batches of {algo.batch_size}")
        self.stdout.write(f"{'batch':>5}  {'feed':>6}  {'random':>6}  states")
        for b in range(batches):
            states = " ".join(f"{k}:{v}" for k, v in sorted(state_counts[b].items()))
            self.stdout.write(f"{b + 1:>5}  {feed[:, b].mean():6.3f}  {baseline[:, b].mean():6.3f}  {states}")
        self.stdout.write(f"{'all':>5}  {feed.mean():6.3f}  {baseline.mean():6.3f}")

        result = {
            "algorithm": algo.slug, "viewers": viewers, "batches": batches, "batch_size": algo.batch_size,
            "seed": seed, "liked_share": liked_share,
            "precision_per_batch": feed.mean(axis=0).round(4).tolist(),
            "random_precision_per_batch": baseline.mean(axis=0).round(4).tolist(),
            "precision": round(float(feed.mean()), 4), "random_precision": round(float(baseline.mean()), 4),
            "states_per_batch": state_counts,
        }
        path = Path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2))
        self.stdout.write(self.style.SUCCESS(f"wrote {path}"))
