"""Reading algorithms out of the database as plain ``Blueprint`` values.

Nothing here caches: the feed reads the blueprint for every batch and every signal, so an
operator's edit applies to the very next one (three small indexed queries).
"""
from __future__ import annotations

from . import machine
from .models import Algorithm


def default_algorithm() -> Algorithm:
    """The algorithm sessions get when they name none."""
    algorithm = Algorithm.objects.filter(is_default=True).first() or Algorithm.objects.order_by("id").first()
    if algorithm is None:
        raise Algorithm.DoesNotExist("no algorithm is defined; run the migrations, which ship the default")
    return algorithm


def load_blueprint(algorithm: Algorithm) -> machine.Blueprint:
    return machine.Blueprint(
        states=[machine.StateSpec(s.name, s.batch_type, s.params) for s in algorithm.states.all()],
        edges=[machine.EdgeSpec(e.start, e.end, e.trigger) for e in algorithm.edges.all()],
        signals=[machine.SignalSpec(s.name, s.weight, s.polarity) for s in algorithm.signal_types.all()],
        initial=algorithm.initial_state,
        thresholds=algorithm.thresholds,
    )
