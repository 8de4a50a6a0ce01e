from django.core.management.base import BaseCommand, CommandError

from catalog.embedding_jobs import analyze_catalog
from catalog.importers import ImportFileError, import_records, read_records
from catalog.progress import progress_reporter


class Command(BaseCommand):
    help = (
        "Import videos, creators, music and hashtags from a TikTok Trending JSON export "
        "(top-level 'collector'), or a .jsonl file of the same records. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="e.g. ../shared/data/tiktok-trending-2020.json")

    def handle(self, *args, path, **options):
        try:
            records, unreadable = read_records(path)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None

        with progress_reporter(len(records), "import", stream=self.stdout, enabled=options["verbosity"] > 0) as step:
            report = import_records(records, progress=step)
        report.failed[:0] = unreadable
        if report.created:
            analyze_catalog()

        for where, reason in report.failed:
            self.stderr.write(f"{path}: {where}: {reason}")
        summary = f"imported {path}: {report.created} created, {report.updated} updated, {len(report.failed)} failed"
        if report.failed:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
