from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog import embedding_jobs
from catalog.embedding import EmbeddingModelError, load_model
from catalog.progress import progress_reporter
from catalog.models import Topic
from catalog.tasks import cluster_topics, embed_creator_batch, embed_video_batch


def chunked(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


class Command(BaseCommand):
    help = (
        "Embed videos (then creators) whose document or model changed, as Celery tasks: "
        "in-process when no CELERY_BROKER_URL is set, else on the workers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=64, help="rows per task and per encode batch")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
        parser.add_argument("--force", action="store_true", help="re-embed everything")

    def handle(self, *args, batch_size, device, force, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        model_name = settings.EMBEDDING_MODEL
        eager = settings.CELERY_TASK_ALWAYS_EAGER
        changed = embedding_jobs.refresh_video_documents()
        if changed and self.verbosity > 0:
            self.stdout.write(f"{changed} video documents changed")

        video_ids = embedding_jobs.stale_video_ids(model_name, force=force)
        videos = self.run_batches(embed_video_batch, "embed videos", video_ids, model_name, device, batch_size, eager)
        # Creators pool their videos' vectors, so they are planned only once videos are done.
        creator_ids = embedding_jobs.stale_creator_ids(model_name, force=force)
        creators = self.run_batches(
            embed_creator_batch, "embed creators", creator_ids, model_name, device, batch_size, eager
        )
        if videos or creators:
            embedding_jobs.analyze_catalog()
        topics = ""
        if videos or not Topic.objects.exists():
            # Sampled batches draw from topic clusters of the video vectors: refresh them.
            topics = f", {cluster_topics.delay(model_name).get()} topics"
        if self.verbosity > 0:
            self.stdout.write(self.style.SUCCESS(f"embedded {videos} videos and {creators} creators with {model_name}{topics}"))

    def run_batches(self, task, label, ids, model_name, device, batch_size, eager) -> int:
        chunks = chunked(ids, batch_size)
        if eager and chunks:
            # Fail with one clear line if the model or device is wrong; workers load their own.
            try:
                load_model(model_name, device)
            except EmbeddingModelError as exc:
                raise CommandError(str(exc)) from None
        args = (model_name, device, batch_size)
        stored = 0
        with progress_reporter(len(ids), label, stream=self.stdout, enabled=self.verbosity > 0, every=batch_size) as advance:
            if eager:
                # Tasks run as they are sent: one at a time, so progress shows as it happens.
                for chunk in chunks:
                    stored += task.delay(chunk, *args).get()
                    advance(len(chunk))
            else:
                # All batches go to the queue at once so every worker has work; wait in order.
                results = [task.delay(chunk, *args) for chunk in chunks]
                for chunk, result in zip(chunks, results):
                    stored += result.get()
                    advance(len(chunk))
        return stored

    def execute(self, *args, **options):
        self.verbosity = options.get("verbosity", 1)
        return super().execute(*args, **options)
