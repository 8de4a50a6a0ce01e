"""Writing algorithms: from blueprint JSON, always validated first; cloning; the default.

Rows are written one by one or with ``bulk_create_with_history``, never with ``update()``, so
that every change lands in the audit history (django-simple-history: old -> new, who, when).
"""
from __future__ import annotations

from django.db import transaction
from simple_history.utils import bulk_create_with_history

from . import machine
from .blueprints import BlueprintError, blueprint_to_json, parse_blueprint
from .models import Algorithm, Edge, RerankerModel, SignalType, State
from .selectors import load_blueprint


def save_blueprint(
    data: dict | str, *, slug: str, name: str | None = None, description: str = "", make_default: bool = False
) -> Algorithm:
    """Create or replace the algorithm ``slug`` from FirstBatch blueprint JSON.

    Raises ``BlueprintError`` (listing every problem) and saves nothing if it is invalid.
    """
    blueprint = parse_blueprint(data)  # raises on anything invalid
    with transaction.atomic():
        algorithm, _ = Algorithm.objects.select_for_update().get_or_create(slug=slug, defaults={"name": name or slug})
        if name:
            algorithm.name = name
        if description:
            algorithm.description = description
        algorithm.initial_state = blueprint.initial
        algorithm.high_attention_ms = blueprint.thresholds.high_ms
        algorithm.mid_attention_ms = blueprint.thresholds.mid_ms
        algorithm.low_attention_ms = blueprint.thresholds.low_ms
        algorithm.high_attention_ratio = blueprint.thresholds.high_ratio
        algorithm.mid_attention_ratio = blueprint.thresholds.mid_ratio
        algorithm.low_attention_ratio = blueprint.thresholds.low_ratio
        if make_default:
            clear_other_defaults(algorithm)
            algorithm.is_default = True
        algorithm.save()
        algorithm.states.all().delete()
        algorithm.edges.all().delete()
        algorithm.signal_types.all().delete()
        write_rows(algorithm, blueprint)
    return algorithm


def write_rows(algorithm, blueprint: machine.Blueprint, *, models=(State, Edge, SignalType)) -> None:
    """Create the state, edge and signal-type rows of ``blueprint`` under ``algorithm``.

    ``models`` lets a data migration pass its historical model classes (which keep no history).
    """
    state_model, edge_model, signal_model = models

    def create(model, rows):
        rows = list(rows)
        if hasattr(model, "history"):
            bulk_create_with_history(rows, model)
        else:
            model.objects.bulk_create(rows)

    create(state_model, (
        state_model(algorithm=algorithm, name=s.name, batch_type=s.batch_type, params=dict(s.params))
        for s in blueprint.states
    ))
    create(edge_model, (
        edge_model(algorithm=algorithm, name=f"edge{i}", start=e.start, end=e.end, trigger=e.trigger)
        for i, e in enumerate(blueprint.edges, start=1)
    ))
    create(signal_model, (
        signal_model(algorithm=algorithm, name=s.name, weight=s.weight, polarity=s.polarity)
        for s in blueprint.signals
    ))


def clear_other_defaults(algorithm: Algorithm) -> None:
    """Unmark every default but ``algorithm`` (row by row, so the history shows it)."""
    for other in Algorithm.objects.select_for_update().filter(is_default=True).exclude(pk=algorithm.pk):
        other.is_default = False
        other.save(update_fields=["is_default", "updated_at"])


def make_default(algorithm: Algorithm) -> None:
    """Make ``algorithm`` the one sessions that name none get."""
    with transaction.atomic():
        clear_other_defaults(algorithm)
        algorithm.is_default = True
        algorithm.save(update_fields=["is_default", "updated_at"])


def clone_algorithm(source: Algorithm, *, slug: str, name: str) -> Algorithm:
    """A copy of ``source`` as it is stored (machine, thresholds, batch size) under a new slug:
    not the default and given no traffic share, so it serves nobody until an operator says so."""
    blueprint = load_blueprint(source)
    fields = ["description", "initial_state", "batch_size", "high_attention_ms", "mid_attention_ms",
              "low_attention_ms", "high_attention_ratio", "mid_attention_ratio", "low_attention_ratio"]
    with transaction.atomic():
        clone = Algorithm.objects.create(
            slug=slug, name=name, is_default=False, traffic_share=0,
            **{field: getattr(source, field) for field in fields},
        )
        write_rows(clone, blueprint)
    return clone


def export_blueprint(algorithm: Algorithm) -> dict:
    return blueprint_to_json(load_blueprint(algorithm))


def algorithm_errors(algorithm: Algorithm) -> list[str]:
    """Why the stored ``algorithm`` cannot run (empty when it can)."""
    blueprint = load_blueprint(algorithm)
    return machine.validate(blueprint)


__all__ = ["BlueprintError", "save_blueprint", "export_blueprint", "algorithm_errors", "make_default",
           "clone_algorithm", "clear_other_defaults"]


def save_reranker_model(trained) -> RerankerModel:
    """Store a trained reranker (``learned.TrainedReranker``): from the next request on, the
    partner funnel reranks with it."""
    import sklearn

    return RerankerModel.objects.create(
        examples=trained.n_examples, positives=trained.n_positive, metrics=trained.metrics,
        features=list(trained.model.feature_names), library_version=sklearn.__version__, model=trained.model.to_bytes(),
    )
