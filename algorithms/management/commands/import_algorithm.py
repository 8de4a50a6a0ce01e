from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from algorithms.services import BlueprintError, save_blueprint


class Command(BaseCommand):
    help = "Create or replace an algorithm from a FirstBatch blueprint JSON file (validated first)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--slug", help="defaults to the file name")
        parser.add_argument("--name")
        parser.add_argument("--default", action="store_true", help="make it the default algorithm")

    def handle(self, *args, file, slug, name, default, **options):
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{path}: cannot be read ({exc.strerror or exc})") from None
        slug = slug or slugify(path.stem)
        try:
            algorithm = save_blueprint(text, slug=slug, name=name, make_default=default)
        except BlueprintError as exc:
            raise CommandError(f"{path}: not imported:\n  " + "\n  ".join(exc.errors)) from None
        self.stdout.write(self.style.SUCCESS(
            f"imported {path} as '{algorithm.slug}': {algorithm.states.count()} states, {algorithm.edges.count()} edges"
        ))
