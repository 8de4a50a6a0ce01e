import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from algorithms.evaluation import extract_tastes
from algorithms.models import Algorithm
from algorithms.selectors import default_algorithm
from catalog.progress import progress_reporter
from feed import evaluation

SEED_ALGORITHM = "seed-default"


class Command(BaseCommand):
    help = (
        "Measure the feed with simulated viewers whose tastes come from the catalog's metadata "
        "(hashtag topics and creators), not from the embeddings the feed searches: each viewer "
        "watches on-topic videos through and skips the rest, through the feed's own services. "
        "Prints the on-topic share per batch against a random feed, the ceiling and the base "
        "rate, and writes JSON and a PNG plot."
    )

    def add_arguments(self, parser):
        parser.add_argument("--algorithm", action="append", dest="algorithms", metavar="SLUG",
                            help=f"an algorithm to measure; repeatable (default: the default algorithm and {SEED_ALGORITHM})")
        parser.add_argument("--viewers-per-taste", type=int, default=6)
        parser.add_argument("--batches", type=int, default=10)
        parser.add_argument("--window", type=int, nargs=2, default=None, metavar=("FIRST", "LAST"),
                            help="batches averaged into each taste's score (default: 3 10, within --batches)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--noise", type=float, default=0.1,
                            help="probability that a watch is flipped (a liked video skipped, a disliked one watched)")
        parser.add_argument("--min-share", type=float, default=0.02, help="smallest taste, as a share of the catalog")
        parser.add_argument("--max-share", type=float, default=0.15,
                            help="largest taste, as a share of the catalog; a hashtag on more is never a taste")
        parser.add_argument("--output", default="var/evaluate_feed.json",
                            help="JSON report; the plot goes beside it with the same name and .png")

    def handle(self, *args, algorithms, viewers_per_taste, batches, window, seed, noise, min_share, max_share,
               output, **options):
        if viewers_per_taste < 1 or batches < 1:
            raise CommandError("--viewers-per-taste and --batches must be at least 1")
        if window is None:
            window = (min(3, batches), min(10, batches))
        elif not 1 <= window[0] <= window[1] <= batches:
            raise CommandError(f"--window {window[0]} {window[1]} must be two batch numbers, "
                               f"first <= last, from 1 to --batches ({batches})")
        if seed < 0:
            raise CommandError("--seed must be 0 or more")
        if not 0 <= noise < 0.5:
            raise CommandError("--noise is a probability below 0.5 (at 0.5 a watch says nothing)")
        if not 0 < min_share <= max_share <= 1:
            raise CommandError("--min-share and --max-share must satisfy 0 < min-share <= max-share <= 1")
        output = Path(output)
        if output.suffix.lower() != ".json":
            raise CommandError(f"--output {output} should end in .json (the plot goes beside it as .png)")
        chosen = self._algorithms(algorithms)

        videos, unembedded = evaluation.catalog_videos()
        if not videos:
            if unembedded:
                raise CommandError(f"none of the catalog's {unembedded} videos is embedded yet: run `manage.py embed`")
            raise CommandError("the catalog is empty: import one (`manage.py import_trending PATH`) and embed it")
        if unembedded:
            self.stderr.write(f"leaving out {unembedded} videos without an embedding (run `manage.py embed`)")
        needed = max(size for _, size in chosen) * batches
        if len(videos) < needed:
            raise CommandError(f"only {len(videos)} embedded videos: {batches} batches need {needed}; "
                               "import and embed a larger catalog or ask for fewer --batches")
        tastes = extract_tastes(videos, min_share=min_share, max_share=max_share)
        if not tastes:
            raise CommandError(f"no taste (hashtag topic or creator) covers between {min_share:.1%} and "
                               f"{max_share:.1%} of the {len(videos)} videos: widen --min-share/--max-share")

        self.stdout.write(f"{len(videos)} videos, {len(tastes)} tastes:")
        width = max(len(t.name) for t in tastes)
        for t in tastes:
            also = f"  (+{', '.join(t.tags[1:])})" if len(t.tags) > 1 else ""
            self.stdout.write(f"  {t.name:<{width}}  {t.size:5d}  {t.share:6.1%}{also[:100]}")
        self.stdout.write(f"{viewers_per_taste} viewers per taste, {batches} batches, noise {noise}, seed {seed}\n")

        started = time.perf_counter()
        total = len(chosen) * len(tastes) * viewers_per_taste
        with progress_reporter(total, "evaluate_feed viewers", stream=self.stderr,
                               enabled=options["verbosity"] > 0) as advance:
            report = evaluation.evaluate(videos, tastes, chosen, viewers_per_taste=viewers_per_taste,
                                         batches=batches, window=tuple(window), seed=seed, noise=noise,
                                         advance=advance)
        self.stdout.write(report.table())

        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
        plot = output.with_suffix(".png")
        report.plot(plot)
        self.stderr.write(f"took {time.perf_counter() - started:.1f} s")
        self.stdout.write(self.style.SUCCESS(f"wrote {output} and {plot}"))

    def _algorithms(self, slugs: list[str] | None) -> list[tuple[str, int]]:
        """(slug, batch size) of each algorithm to measure, in order, without repeats."""
        sizes = dict(Algorithm.objects.values_list("slug", "batch_size"))
        if slugs:
            unknown = [s for s in slugs if s not in sizes]
            if unknown:
                raise CommandError(f"no algorithm {', '.join(map(repr, unknown))}; known: {', '.join(sorted(sizes))}")
        else:
            try:
                slugs = [default_algorithm().slug]
            except Algorithm.DoesNotExist as exc:
                raise CommandError(str(exc)) from None
            if SEED_ALGORITHM in sizes:
                slugs.append(SEED_ALGORITHM)
        return [(slug, sizes[slug]) for slug in dict.fromkeys(slugs)]
