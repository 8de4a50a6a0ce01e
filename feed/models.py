"""Viewer sessions and what happened in them: impressions served and signals received; the
partners' API keys (``PartnerKey``) and the scopes each holds.

A ``PartnerKey`` is ``djangorestframework-api-key``'s key (hashed at rest, shown once; the
library's documented way to extend keys: a subclass of ``AbstractAPIKey``) with scopes. A
partner is the name its keys are created under: keys of one name are one partner's, and what
one creates (a feed session) the others may use. Each API view names the one scope it needs (its
``api_scope``, ``feed.api_auth``); a key holds any of them. New keys read and run sessions;
ingesting is granted on purpose.
"""
import uuid

from django.conf import settings
from django.db import models
from pgvector.django import VectorField
from rest_framework_api_key.models import AbstractAPIKey


class FeedSession(models.Model):
    """One viewer's walk through an algorithm's state machine.

    ``cycle`` counts how many times the viewer has exhausted the catalog: history exclusion
    applies to the impressions of the current cycle only, so a viewer who has seen everything
    starts over instead of getting empty batches.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    viewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="feed_sessions"
    )
    anonymous_key = models.CharField(max_length=64, blank=True, db_index=True, help_text="Django session key")
    partner = models.CharField(
        max_length=50, null=True, blank=True, editable=False,
        help_text="the partner (API key name) that started it, who alone may use it; empty for a viewer's feed",
    )
    algorithm = models.ForeignKey("algorithms.Algorithm", on_delete=models.PROTECT, related_name="sessions")
    state = models.CharField(max_length=100)
    bucket = models.JSONField(default=dict, blank=True, help_text="cold-start bucket as given by the client")
    bias_vector = VectorField(dimensions=settings.EMBEDDING_DIM, null=True, blank=True, editable=False)
    batch_count = models.PositiveIntegerField(default=0)
    cycle = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # The live monitor counts the sessions active in its window (feed.monitor_queries).
        indexes = [models.Index(fields=["updated_at"], name="session_updated_at")]

    def __str__(self):
        return f"session {self.id} ({self.algorithm_id}: {self.state})"


class Impression(models.Model):
    session = models.ForeignKey(FeedSession, on_delete=models.CASCADE, related_name="impressions")
    video = models.ForeignKey("catalog.Video", on_delete=models.CASCADE, related_name="impressions")
    batch_number = models.PositiveIntegerField()
    position = models.PositiveSmallIntegerField()
    cycle = models.PositiveIntegerField(default=0)
    state = models.CharField(max_length=100, help_text="state that served it")
    batch_type = models.CharField(max_length=20)
    source = models.CharField(max_length=10, help_text="random, topic, ann or bias")
    similarity = models.FloatField(null=True, blank=True)
    withdrawn = models.BooleanField(
        default=False, db_default=False,
        help_text="replaced before it was shown (the feed re-ranked its upcoming cards after a view); "
                  "a view of it is still accepted, and history still excludes it",
    )
    score = models.FloatField(null=True, blank=True, help_text="the ranking's score of the pick, when it scores")
    score_parts = models.JSONField(
        null=True, blank=True, help_text="what the score is made of (name -> value), to explain the pick",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "batch_number", "position"]
        indexes = [
            models.Index(fields=["session", "cycle"]),
            # The live monitor reads the impressions of its window (the videos served most).
            models.Index(fields=["created_at"], name="impression_created_at"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["session", "cycle", "video"], name="no_repeat_within_cycle")
        ]


class Signal(models.Model):
    session = models.ForeignKey(FeedSession, on_delete=models.CASCADE, related_name="signals")
    video = models.ForeignKey("catalog.Video", null=True, blank=True, on_delete=models.CASCADE, related_name="signals")
    type = models.CharField(max_length=50, blank=True, help_text="empty when the event produced no signal")
    watched_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="the video's length for a view: the client's, else the catalog's; empty when unknown",
    )
    event_id = models.UUIDField()
    state_before = models.CharField(max_length=100)
    state_after = models.CharField(max_length=100)
    served_state = models.CharField(
        max_length=100, blank=True, default="", db_default="",
        help_text="the state that served the video (its latest impression's), kept so that the monitor's "
                  "figures per state need no lookup per view; empty for signals recorded before it was kept",
    )
    undoes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="undone_by",
        help_text="for an undo (a row with no type): the action it withdrew, which then counts as never made",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "id"]
        # A batch reads a session's latest signals: without (session, id) PostgreSQL walks the
        # whole table's primary key backwards to find them.
        indexes = [
            models.Index(fields=["session", "id"], name="signal_session_latest"),
            # The live monitor reads the signals of its window (feed.monitor_queries).
            models.Index(fields=["created_at"], name="signal_created_at"),
        ]
        constraints = [models.UniqueConstraint(fields=["session", "event_id"], name="one_signal_per_event")]

    def __str__(self):
        return f"{self.type or ('undo' if self.undoes_id else 'no signal')} on {self.video_id}"


class ServedBatch(models.Model):
    """One batch served to a session: which state built it, and how long that took.

    A row of its own rather than a column on the batch's first impression: latency belongs to
    the batch, and impressions move (a revision withdraws one, or takes its row back at another
    place), while a batch, once served, does not.
    """

    session = models.ForeignKey(FeedSession, on_delete=models.CASCADE, related_name="served_batches")
    number = models.PositiveIntegerField()
    state = models.CharField(max_length=100, help_text="state that served it")
    batch_type = models.CharField(max_length=20)
    next_state = models.CharField(max_length=100, help_text="state after its BATCH edge")
    size = models.PositiveSmallIntegerField()
    build_ms = models.FloatField(help_text="from the request reaching the use case to the batch picked (lock, "
                                           "history, recall, ranking)")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "number"]
        indexes = [models.Index(fields=["created_at"], name="servedbatch_created_at")]
        constraints = [models.UniqueConstraint(fields=["session", "number"], name="one_row_per_batch")]

    def __str__(self):
        return f"batch {self.number} of {self.session_id} ({self.state}, {self.build_ms:.0f} ms)"


#: Every scope, with what it opens. A key holds scope ``s`` when its ``scope_<s>`` field is true.
SCOPES = {
    "read": "the catalog, similar videos and creators, recommendations",
    "sessions": "partner feed sessions: starting them, their batches and signals",
    "ingest": "the ingestion endpoints: adding to the catalog",
}
#: What a key holds unless it is given other scopes.
DEFAULT_SCOPES = ("read", "sessions")


def scope_field(scope: str) -> str:
    return f"scope_{scope}"


class PartnerKey(AbstractAPIKey):
    name = models.CharField(max_length=50, help_text="The partner the key is for: keys of one name are one "
                                                     "partner's, and share its sessions. 50 characters max.")
    scope_read = models.BooleanField("read", default="read" in DEFAULT_SCOPES, help_text=SCOPES["read"])
    scope_sessions = models.BooleanField("sessions", default="sessions" in DEFAULT_SCOPES,
                                         help_text=SCOPES["sessions"])
    scope_ingest = models.BooleanField("ingest", default="ingest" in DEFAULT_SCOPES, help_text=SCOPES["ingest"])

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "partner API key"
        verbose_name_plural = "partner API keys"

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes this key holds, in ``SCOPES`` order."""
        return tuple(scope for scope in SCOPES if getattr(self, scope_field(scope)))

    def has_scope(self, scope: str) -> bool:
        return bool(getattr(self, scope_field(scope)))


class BucketCentroid(models.Model):
    """Where new sessions of a cold-start bucket start: the centroid of the vectors of the
    bucket's top engagers (``key`` from ``feed.cold_start.bucket_keys``; ``"*"``: the global
    centroid of engaged content). Recomputed by the ``feed.refresh_bucket_centroids`` task."""

    key = models.CharField(max_length=2500, unique=True)
    centroid = VectorField(dimensions=settings.EMBEDDING_DIM)
    engagers = models.PositiveIntegerField(default=0, help_text="engaged sessions whose vectors it pools")
    embedding_model = models.CharField(max_length=200)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self):
        return f"{self.key} ({self.engagers} engagers)"
