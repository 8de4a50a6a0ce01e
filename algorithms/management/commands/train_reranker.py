"""``manage.py train_reranker``: train the partner funnel's learned reranker from the feed's log
now, in this process (the same job as the Celery task ``algorithms.train_reranker``)."""
from django.core.management.base import BaseCommand

from algorithms.ranking.learned import MIN_EXAMPLES
from algorithms.selectors import learned_model_earns_its_place
from algorithms.tasks import train_reranker


class Command(BaseCommand):
    help = ("Train the learned reranker from the feed's impressions and signals and store it; with too few "
            "labelled impressions, say so and keep the hand-weighted reranker.")

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0, help="the split's and the model's seed (default 0)")
        parser.add_argument("--min-examples", type=int, default=MIN_EXAMPLES,
                            help=f"labelled impressions needed to train (default {MIN_EXAMPLES})")

    def handle(self, *args, seed, min_examples, **options):
        result = train_reranker(seed=seed, min_examples=min_examples)
        if result["status"] != "trained":
            self.stdout.write(self.style.WARNING(f"Not trained: {result['reason']}."))
            return
        self.stdout.write(self.style.SUCCESS(
            f"Trained reranker {result['model']} on {result['examples']} labelled impressions "
            f"({result['positives']} positive): validation AUC {result['validation_auc']:.3f} on "
            f"{result['validation_examples']} impressions of held-out sessions "
            f"(similarity alone: {result['similarity_auc']:.3f})."))
        if learned_model_earns_its_place(result):
            self.stdout.write(self.style.SUCCESS("It now reranks recommendations."))
        else:
            self.stdout.write(self.style.WARNING(
                "It does not beat similarity alone on the held-out sessions (by more than "
                "RERANKER_MIN_GAIN_OVER_SIMILARITY), so the hand-weighted reranker stays in use."))
