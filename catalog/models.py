"""The catalog: creators, their videos, music, hashtags, comments, their embeddings, and the
partners' ingestion jobs (``IngestJob``).

Every video and creator carries one vector (``embedding``) together with the name of the model
and the hash of the document it was computed from, so the embedding job can tell exactly which
rows are stale: a row needs embedding when it has no vector, or when its current document hash
or the configured model differ from the ones recorded with its vector.
"""
import uuid

from django.conf import settings
from django.db import models
from pgvector.django import HnswIndex, VectorField


class EmbeddedMixin(models.Model):
    """The vector of a row and what it was computed from."""

    embedding = VectorField(dimensions=settings.EMBEDDING_DIM, null=True, blank=True, editable=False)
    embedding_model = models.CharField(max_length=200, blank=True, editable=False)
    embedding_document_hash = models.CharField(
        max_length=64, blank=True, editable=False, help_text="Hash of the document the vector came from."
    )
    embedded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


class Creator(EmbeddedMixin):
    external_id = models.CharField(max_length=64, unique=True)
    handle = models.CharField(max_length=100, db_index=True)
    display_name = models.CharField(max_length=200, blank=True)
    bio = models.TextField(blank=True)
    verified = models.BooleanField(default=False)
    avatar_url = models.URLField(max_length=2000, blank=True)
    follower_count = models.BigIntegerField(default=0)
    following_count = models.BigIntegerField(default=0)
    heart_count = models.BigIntegerField(default=0)
    video_count = models.BigIntegerField(default=0)
    language = models.CharField(max_length=16, blank=True)
    country = models.CharField(max_length=2, blank=True)

    class Meta:
        ordering = ["handle"]
        indexes = [
            HnswIndex(
                name="creator_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            )
        ]

    def __str__(self):
        return f"@{self.handle}"


class Music(models.Model):
    external_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=500, blank=True)
    author = models.CharField(max_length=500, blank=True)
    original = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "music"
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} — {self.author}" if self.author else self.name


class Hashtag(models.Model):
    name = models.CharField(max_length=200, unique=True)
    external_id = models.CharField(max_length=64, blank=True)
    #: How many videos carry the tag: kept by the database (migration catalog/0007's triggers)
    #: on every write to the video-hashtag links, whoever makes it; a value written here is
    #: ignored. Tag rarity (``algorithms.ranking.catalog.tag_idf``) reads it on every batch.
    video_count = models.BigIntegerField(
        default=0, editable=False, help_text="Videos with this hashtag (kept up to date by the database).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"#{self.name}"


class Video(EmbeddedMixin):
    external_id = models.CharField(max_length=64, unique=True)
    creator = models.ForeignKey(Creator, on_delete=models.CASCADE, related_name="videos")
    caption = models.TextField(blank=True)
    music = models.ForeignKey(Music, on_delete=models.SET_NULL, null=True, blank=True, related_name="videos")
    hashtags = models.ManyToManyField(Hashtag, blank=True, related_name="videos")
    duration_s = models.PositiveIntegerField(default=0)
    play_count = models.BigIntegerField(default=0)
    like_count = models.BigIntegerField(default=0)
    share_count = models.BigIntegerField(default=0)
    comment_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(null=True, blank=True, db_index=True)
    language = models.CharField(max_length=16, blank=True)
    web_url = models.URLField(max_length=2000, blank=True)
    media_url = models.URLField(max_length=2000, blank=True)
    cover_url = models.URLField(max_length=2000, blank=True)
    # The text the embedding job embeds (see catalog.documents), and its hash. Kept on the row
    # so operators can see what the model read; refreshed by the job when its inputs change.
    document = models.TextField(blank=True, editable=False)
    document_hash = models.CharField(max_length=64, blank=True, editable=False)
    topic = models.IntegerField(null=True, blank=True, editable=False, help_text="k-means topic cluster")

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            HnswIndex(
                name="video_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            )
        ]

    def __str__(self):
        return f"{self.external_id} by {self.creator_id}: {self.caption[:40]}"


class Topic(models.Model):
    """A k-means cluster of the video vectors; ``Video.topic`` holds its ``number``.

    Sampled batches draw one video from each of a few topics. Recomputed by the
    ``catalog.cluster_topics`` task after embedding; videos ingested in between join their
    nearest topic (``embedding_jobs.assign_nearest_topics``).
    """

    number = models.PositiveIntegerField(unique=True)
    centroid = VectorField(dimensions=settings.EMBEDDING_DIM)
    size = models.PositiveIntegerField(default=0)
    embedding_model = models.CharField(max_length=200)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]

    def __str__(self):
        return f"topic {self.number} ({self.size} videos)"


class Comment(models.Model):
    """A viewer's comment on a video (TikLiveAPI's ``/post-comments/``); a viewer's last comments
    make their interest vector (``catalog.interests``)."""

    external_id = models.CharField(max_length=64, unique=True)
    video = models.ForeignKey(Video, on_delete=models.CASCADE, related_name="comments")
    author_handle = models.CharField(max_length=100)
    author_external_id = models.CharField(max_length=64, blank=True)
    text = models.TextField()
    like_count = models.BigIntegerField(default=0)
    reply_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["author_handle", "-created_at"], name="comment_author_recent")]

    def __str__(self):
        return f"@{self.author_handle}: {self.text[:40]}"


class IngestJob(models.Model):
    """One batch of videos a partner sent to ``POST /api/v1/ingest/videos/``, and its processing.

    The records that passed validation wait in ``records`` (``[{"index", "record"}]``, the index
    in the batch as sent) for the job (``catalog.ingestion.run_job``); those that did not are in
    ``failures`` from the start. A partner's batch is one job: ``content_hash`` (of its records'
    canonical JSON) is unique per partner, so sending the same batch again finds this job.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    partner = models.CharField(max_length=50, help_text="The name of the API key that sent the batch (at most 50, as there).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    content_hash = models.CharField(max_length=64, help_text="sha256 of the records' canonical JSON.")
    received = models.PositiveIntegerField(default=0, help_text="Records in the batch.")
    valid = models.PositiveIntegerField(default=0, help_text="Records that passed validation.")
    created = models.PositiveIntegerField(default=0, help_text="Videos stored that were new.")
    updated = models.PositiveIntegerField(default=0, help_text="Videos stored that existed already.")
    videos_embedded = models.PositiveIntegerField(default=0)
    creators_embedded = models.PositiveIntegerField(default=0)
    failures = models.JSONField(default=list, blank=True, help_text='[{"index", "field", "message"}]')
    records = models.JSONField(default=list, blank=True, editable=False)
    progress = models.JSONField(default=dict, blank=True, help_text='{phase: {"done", "total"}}')
    error = models.CharField(max_length=500, blank=True, help_text="Why the job itself failed.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["partner", "content_hash"], name="ingest_job_one_per_batch"),
        ]

    def __str__(self):
        return f"ingest {self.id} by {self.partner}: {self.status}"
