"""Algorithms as operators edit them: states, edges, signal types, watch-time thresholds.

These rows are the editable form of a ``machine.Blueprint``; ``selectors.load_blueprint``
turns them into one and ``services`` validate before anything is saved. Edges name their
states (as FirstBatch blueprints do) rather than pointing at rows, so operators can add a state
and the edges to it in one admin save, and a dangling name is a validation error, not a crash.
"""
from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from . import machine
from .ranking import BATCH_TYPES


class Algorithm(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    is_default = models.BooleanField(
        default=False, help_text="Sessions that name no algorithm use this one (exactly one is the default)."
    )
    initial_state = models.CharField(max_length=100, default="0", help_text="The state new sessions start in.")
    high_attention_ms = models.PositiveIntegerField(default=machine.DEFAULT_THRESHOLDS.high_ms)
    mid_attention_ms = models.PositiveIntegerField(default=machine.DEFAULT_THRESHOLDS.mid_ms)
    low_attention_ms = models.PositiveIntegerField(default=machine.DEFAULT_THRESHOLDS.low_ms)
    high_attention_ratio = models.FloatField(
        null=True, blank=True,
        help_text="Watched time / video duration that is high attention too (above 1: loops). "
                  "Set all three ratios or none; empty = the ms thresholds alone.",
    )
    mid_attention_ratio = models.FloatField(
        null=True, blank=True, help_text="Watch ratio that is mid attention (below the high ratio).",
    )
    low_attention_ratio = models.FloatField(
        null=True, blank=True,
        help_text="Watch ratio that is low attention (below the mid ratio); less is a skip.",
    )
    batch_size = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)])
    traffic_share = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)],
        help_text="Percent of new sessions that name no algorithm (A/B test). When every share is 0, "
                  "they all go to the default; otherwise the shares must sum to 100.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    version = models.BigIntegerField(
        default=0, editable=False,
        help_text="Changes whenever this algorithm, one of its states, edges or signal types changes.",
    )
    # Operators' edits are audited (old -> new in the admin's history); the feed's bookkeeping
    # (version bumps, timestamps) is not an edit.
    history = HistoricalRecords(excluded_fields=["updated_at", "version"])

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True), name="one_default_algorithm")
        ]

    def __str__(self):
        return self.name

    @property
    def thresholds(self) -> machine.Thresholds:
        return machine.Thresholds(
            self.high_attention_ms, self.mid_attention_ms, self.low_attention_ms,
            self.high_attention_ratio, self.mid_attention_ratio, self.low_attention_ratio,
        )


class State(models.Model):
    BATCH_TYPE_CHOICES = [(t, t) for t in BATCH_TYPES]

    algorithm = models.ForeignKey(Algorithm, on_delete=models.CASCADE, related_name="states")
    name = models.CharField(max_length=100)
    batch_type = models.CharField(max_length=20, choices=BATCH_TYPE_CHOICES)
    params = models.JSONField(default=dict, blank=True, help_text="last_n, r, mu, alpha, apply_threshold, apply_mmr, mmr_lambda, n_topics…")

    history = HistoricalRecords()

    class Meta:
        ordering = ["algorithm", "id"]
        constraints = [models.UniqueConstraint(fields=["algorithm", "name"], name="unique_state_name")]

    def __str__(self):
        return self.name


class Edge(models.Model):
    algorithm = models.ForeignKey(Algorithm, on_delete=models.CASCADE, related_name="edges")
    name = models.CharField(max_length=100, blank=True)
    start = models.CharField(max_length=100, help_text="state name")
    end = models.CharField(max_length=100, help_text="state name")
    trigger = models.CharField(max_length=50, help_text="a signal type, BATCH or DEFAULT")

    history = HistoricalRecords()

    class Meta:
        ordering = ["algorithm", "id"]
        constraints = [models.UniqueConstraint(fields=["algorithm", "start", "trigger"], name="one_edge_per_trigger")]

    def __str__(self):
        return f"{self.start} --{self.trigger}--> {self.end}"


class SignalType(models.Model):
    POLARITY_CHOICES = [(machine.POSITIVE, "positive"), (machine.NEUTRAL, "neutral"), (machine.NEGATIVE, "negative")]

    algorithm = models.ForeignKey(Algorithm, on_delete=models.CASCADE, related_name="signal_types")
    name = models.CharField(max_length=50)
    weight = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)])
    polarity = models.SmallIntegerField(choices=POLARITY_CHOICES, default=machine.POSITIVE)

    history = HistoricalRecords()

    class Meta:
        ordering = ["algorithm", "id"]
        constraints = [models.UniqueConstraint(fields=["algorithm", "name"], name="unique_signal_type")]

    def __str__(self):
        return self.name


class SimulationRun(models.Model):
    """One ``evaluate_feed`` run of an algorithm, started from the admin and run as a Celery job."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    algorithm = models.ForeignKey(Algorithm, on_delete=models.CASCADE, related_name="simulation_runs")
    algorithm_version = models.BigIntegerField(help_text="The algorithm's version when the run started.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    options = models.JSONField(default=dict, blank=True, help_text="evaluate_feed's options (viewers, batches, seed...)")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="Steps done (progress bar).")
    total = models.PositiveIntegerField(default=0, help_text="Steps in all (0 until known).")
    result = models.JSONField(null=True, blank=True, help_text="evaluate_feed's JSON report.")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"simulation of {self.algorithm} ({self.status})"



class RerankerModel(models.Model):
    """A learned reranker for the partner funnel (``algorithms.ranking.learned``), trained from
    the feed's log by ``algorithms.tasks.train_reranker``; the newest row is the one in use.

    The fitted model is stored here as joblib bytes rather than as a file under the data
    directory: every web process and replica reads the same database (they share no disk), the
    model and its metrics are written in one transaction (no row without its file, no file
    without its row), and a backup of the database carries it. It is a few hundred KB. Bytes
    are only ever unpickled from this table, which only ``services.save_reranker_model`` writes.
    """

    trained_at = models.DateTimeField(auto_now_add=True)
    examples = models.PositiveIntegerField(help_text="Labelled impressions it was trained on.")
    positives = models.PositiveIntegerField(help_text="Of those, the ones watched long or liked.")
    metrics = models.JSONField(default=dict, help_text="validation_auc (on held-out sessions), similarity_auc "
                                                         "(similarity alone, same rows), train_auc, sizes, seed.")
    features = models.JSONField(help_text="The feature names, in the model's column order.")
    library_version = models.CharField(max_length=20, help_text="The scikit-learn version that fitted it; "
                                                                 "another version does not load it.")
    model = models.BinaryField(editable=False)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        auc = self.metrics.get("validation_auc")
        return f"reranker {self.pk} ({self.examples} examples, AUC {auc:.3f})" if auc is not None else f"reranker {self.pk}"
