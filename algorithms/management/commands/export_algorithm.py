import json

from django.core.management.base import BaseCommand, CommandError

from algorithms.models import Algorithm
from algorithms.services import export_blueprint


class Command(BaseCommand):
    help = "Print an algorithm as FirstBatch blueprint JSON."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        try:
            algorithm = Algorithm.objects.get(slug=slug)
        except Algorithm.DoesNotExist:
            known = ", ".join(Algorithm.objects.values_list("slug", flat=True))
            raise CommandError(f"no algorithm '{slug}' (known: {known})") from None
        self.stdout.write(json.dumps(export_blueprint(algorithm), indent=2))
