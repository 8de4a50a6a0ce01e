from django.core.management.base import BaseCommand, CommandError

from algorithms.offline_eval.movielens import convert
from algorithms.offline_eval.scoring import NEGATIVE_STRATEGIES


class Command(BaseCommand):
    help = (
        "Convert MovieLens (movies.csv, ratings.csv, tags.csv) into evaluate_auc's neutral format: "
        "OUT/items.jsonl (title, genres and tags as text) and OUT/events.jsonl (ratings >= 4 are "
        "engagement; each user's last engagement is the test positive, with sampled negatives)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", help="a MovieLens folder, e.g. ../shared/data/movielens-latest-small")
        parser.add_argument("out", help="the folder to write items.jsonl and events.jsonl into")
        parser.add_argument("--negatives", choices=NEGATIVE_STRATEGIES, default="uniform",
                            help="test negatives drawn uniformly or in proportion to history popularity")
        parser.add_argument("--per-user", type=int, default=100, help="test negatives per tested user")
        parser.add_argument("--min-rating", type=float, default=4.0, help="the lowest rating that counts as engagement")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, directory, out, negatives, per_user, min_rating, seed, **options):
        if per_user < 1:
            raise CommandError("--per-user must be at least 1")
        try:
            counts = convert(directory, out, negatives=negatives, negatives_per_user=per_user,
                             min_rating=min_rating, seed=seed)
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"wrote {out}/items.jsonl ({counts['items']} items) and {out}/events.jsonl ({counts['users']} users, "
            f"{counts['history_events']} history events, {counts['tested_users']} tested users, "
            f"{counts['test_rows']} test rows, {negatives} negatives)"))
