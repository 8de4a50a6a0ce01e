"""Writing algorithms: from blueprint JSON, always validated first."""
from __future__ import annotations

from django.db import transaction

from . import machine
from .blueprints import BlueprintError, blueprint_to_json, parse_blueprint
from .models import Algorithm, Edge, SignalType, State
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
            Algorithm.objects.filter(is_default=True).exclude(pk=algorithm.pk).update(is_default=False)
            algorithm.is_default = True
        algorithm.save()
        algorithm.states.all().delete()
        algorithm.edges.all().delete()
        algorithm.signal_types.all().delete()
        write_rows(algorithm, blueprint)
    return algorithm


def write_rows(algorithm, blueprint: machine.Blueprint, *, models=(State, Edge, SignalType)) -> None:
    """Create the state, edge and signal-type rows of ``blueprint`` under ``algorithm``.

    ``models`` lets a data migration pass its historical model classes.
    """
    state_model, edge_model, signal_model = models
    state_model.objects.bulk_create(
        state_model(algorithm=algorithm, name=s.name, batch_type=s.batch_type, params=dict(s.params))
        for s in blueprint.states
    )
    edge_model.objects.bulk_create(
        edge_model(algorithm=algorithm, name=f"edge{i}", start=e.start, end=e.end, trigger=e.trigger)
        for i, e in enumerate(blueprint.edges, start=1)
    )
    signal_model.objects.bulk_create(
        signal_model(algorithm=algorithm, name=s.name, weight=s.weight, polarity=s.polarity)
        for s in blueprint.signals
    )


def export_blueprint(algorithm: Algorithm) -> dict:
    return blueprint_to_json(load_blueprint(algorithm))


def algorithm_errors(algorithm: Algorithm) -> list[str]:
    """Why the stored ``algorithm`` cannot run (empty when it can)."""
    blueprint = load_blueprint(algorithm)
    return machine.validate(blueprint)


__all__ = ["BlueprintError", "save_blueprint", "export_blueprint", "algorithm_errors"]
