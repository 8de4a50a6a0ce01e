from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.embedding_jobs import analyze_catalog
from catalog.importers import ImportFileError
from catalog.progress import progress_reporter
from catalog.tikliveapi import ENDPOINTS, import_directory, saved_files
from catalog.tikliveapi_client import Client, fetch


class Command(BaseCommand):
    help = (
        "Import TikLiveAPI responses saved under DIR (userinfo-by-username/, user-posts/, post-comments/ "
        "folders of JSON files); with --fetch, first fetch those handles' responses from the live service "
        "(TIKLIVEAPI_BASE_URL and TIKLIVEAPI_KEY) into DIR, resuming what an earlier run fetched. Safe to re-run."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory")
        parser.add_argument("--fetch", nargs="+", metavar="HANDLE", default=[],
                            help="fetch these creators' profile, posts and comments first")
        parser.add_argument("--post-pages", type=int, default=1)
        parser.add_argument("--comment-videos", type=int, default=10, help="newest posts per creator whose comments to fetch")
        parser.add_argument("--comment-pages", type=int, default=1)
        parser.add_argument("--budget", type=int, default=None, help="most requests (default TIKLIVEAPI_REQUEST_BUDGET)")

    def handle(self, *args, directory, **options):
        if options["fetch"]:
            if not (settings.TIKLIVEAPI_BASE_URL and settings.TIKLIVEAPI_KEY):
                raise CommandError("--fetch needs TIKLIVEAPI_BASE_URL and TIKLIVEAPI_KEY to be set")
            client = Client(settings.TIKLIVEAPI_BASE_URL, settings.TIKLIVEAPI_KEY,
                            timeout_s=settings.TIKLIVEAPI_TIMEOUT_S, retries=settings.TIKLIVEAPI_RETRIES,
                            budget=options["budget"] or settings.TIKLIVEAPI_REQUEST_BUDGET)
            fetched = fetch(directory, client, options["fetch"], post_pages=options["post_pages"],
                            comment_videos=options["comment_videos"], comment_pages=options["comment_pages"])
            for error in fetched.errors:
                self.stderr.write(f"fetch: {error}")
            self.stdout.write(f"fetched {fetched.fetched} responses ({fetched.reused} saved earlier), "
                              f"{client.requests_made} requests")
            if fetched.stopped:
                self.stderr.write(f"fetch stopped: {fetched.stopped}")
        try:
            files, _ = saved_files(Path(directory))
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        total = sum(len(paths) for paths in files.values())
        with progress_reporter(total, "import", stream=self.stdout, enabled=options["verbosity"] > 0) as step:
            report = import_directory(directory, progress=step)
        if report.created:
            analyze_catalog()
        for failure in report.failed:
            self.stderr.write(f"{directory}: {failure}")
        counts = ", ".join(f"{e}: {report.counts[e]['created']} created, {report.counts[e]['updated']} updated"
                           for e in ENDPOINTS)
        summary = f"imported {directory}: {counts}; {len(report.failed)} failed"
        if report.failed:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary + " (run `manage.py embed` to embed the new videos)"))
