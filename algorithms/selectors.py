"""Reading algorithms out of the database as plain ``Blueprint`` values.

The feed reads the blueprint for every batch and every signal, so an operator's edit must apply
to the very next one. Blueprints are cached in memory by ``Algorithm.version``, which triggers
in the database change on every write to an algorithm, its states, edges or signal types
(migration 0003): each call reads the algorithm's current version (one primary-key lookup) and
rebuilds the blueprint only when it changed.
"""
from __future__ import annotations

import functools
import logging
import threading

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tokfeed.ttl_cache import TTLCache

from . import machine, traffic
from .models import Algorithm, RerankerModel

logger = logging.getLogger(__name__)

#: Blueprints kept per process (one per algorithm version in use; old versions age out).
CACHED_BLUEPRINTS = 64


def default_algorithm() -> Algorithm:
    """The algorithm sessions get when they name none."""
    algorithm = Algorithm.objects.filter(is_default=True).first() or Algorithm.objects.order_by("id").first()
    if algorithm is None:
        raise Algorithm.DoesNotExist("no algorithm is defined; run the migrations, which ship the default")
    return algorithm


def traffic_shares() -> list[tuple[int, int]]:
    """Every algorithm's share of new sessions, as ``(id, percent)``."""
    return list(Algorithm.objects.order_by("id").values_list("id", "traffic_share"))


def algorithm_for_new_session(session_id, *, viewer=None) -> Algorithm:
    """The algorithm of a new session that names none: the A/B split's draw for ``session_id``
    (``traffic``), or, for a logged-in ``viewer``, the algorithm of their latest session while
    it is still in the split. Shares that break the rule (written around the admin) send
    everyone to the default, and say so in the log."""
    default = default_algorithm()
    shares = traffic_shares()
    sticky = None
    if viewer is not None and viewer.is_authenticated:
        # The viewer's sessions by their reverse name: algorithms does not import the feed app.
        sticky = viewer.feed_sessions.order_by("-updated_at").values_list("algorithm_id", flat=True).first()
    try:
        chosen = traffic.assign(session_id, shares, default.pk, sticky=sticky)
    except traffic.InvalidSplit as exc:
        logger.error("traffic split ignored, new sessions get the default: %s", exc)
        return default
    return default if chosen == default.pk else Algorithm.objects.get(pk=chosen)


def load_blueprint(algorithm: Algorithm | int, *, version: int | None = None) -> machine.Blueprint:
    """The algorithm as it is in the database now (an instance's own fields may be stale).

    Pass ``version`` only when it was read in the same statement as the caller's current view
    of the algorithm (e.g. joined to a session row just locked); it saves a query.
    """
    algorithm_id = algorithm if isinstance(algorithm, int) else algorithm.pk
    if version is None:
        version = Algorithm.objects.filter(pk=algorithm_id).values_list("version", flat=True).first()
        if version is None:
            raise Algorithm.DoesNotExist(f"no algorithm {algorithm_id}")
    # Versions come from one sequence for all algorithms and are never reused, so a version
    # names one algorithm's content.
    return _read_blueprint(version, algorithm_id)


@functools.lru_cache(maxsize=CACHED_BLUEPRINTS)
def _read_blueprint(version: int, algorithm_id: int) -> machine.Blueprint:
    # Read after the version: if an edit commits in between, the rows are newer than the
    # version they are cached under, never older.
    algorithm = Algorithm.objects.prefetch_related("states", "edges", "signal_types").get(pk=algorithm_id)
    return machine.Blueprint(
        states=[machine.StateSpec(s.name, s.batch_type, s.params) for s in algorithm.states.all()],
        edges=[machine.EdgeSpec(e.start, e.end, e.trigger) for e in algorithm.edges.all()],
        signals=[machine.SignalSpec(s.name, s.weight, s.polarity) for s in algorithm.signal_types.all()],
        initial=algorithm.initial_state,
        thresholds=algorithm.thresholds,
    )


def learned_model_earns_its_place(metrics: dict) -> bool:
    """Whether a model with these training ``metrics`` may rerank: its validation AUC beats the
    AUC of similarity alone on the same held-out impressions by more than
    ``RERANKER_MIN_GAIN_OVER_SIMILARITY``. A model that does not is kept (its metrics say why)
    but the transparent hand-weighted scorer stays in use: a learned model must earn its place."""
    validation, similarity = metrics.get("validation_auc"), metrics.get("similarity_auc")
    if validation is None or similarity is None:
        return False
    return validation > similarity + settings.RERANKER_MIN_GAIN_OVER_SIMILARITY


# The learned reranker in use: the newest stored model, unpickled once per process and kept
# until a newer one is stored. Which one is newest (its id and header) is remembered for
# RERANKER_CACHE_SECONDS, so a recommendation reads no row: a model trained (or deleted, to roll
# back) elsewhere is used within that long, at once in the process that wrote it.
_learned_lock = threading.Lock()
_learned: dict[int, object] = {}
_refused: set[int] = set()
_newest_header: TTLCache[tuple | None] = TTLCache(lambda: settings.RERANKER_CACHE_SECONDS)


def _read_newest_header() -> tuple | None:
    return RerankerModel.objects.order_by("-id").values_list("id", "features", "library_version", "metrics").first()


@receiver([post_save, post_delete], sender=RerankerModel, dispatch_uid="forget_newest_reranker_header")
def forget_newest_reranker(**kwargs) -> None:
    _newest_header.forget()


def current_learned_model():
    """The newest stored reranker (``learned_scorer.LearnedScorer``), or None when there is none, when it
    does not beat similarity alone on its held-out sessions (``learned_model_earns_its_place``),
    or when it cannot be used here (other features, another scikit-learn version: logged once)."""
    import sklearn

    from .ranking.learned import FEATURES
    from .ranking.learned_scorer import LearnedScorer

    header = _newest_header.get(None, _read_newest_header)
    if header is None:
        return None
    pk, features, version, metrics = header
    if not learned_model_earns_its_place(metrics):
        return None
    with _learned_lock:
        if pk in _learned:
            return _learned[pk]
        if pk in _refused:
            return None
        if tuple(features) != FEATURES or version != sklearn.__version__:
            _refused.add(pk)
            logger.warning("reranker %s is not used: fitted on %s with scikit-learn %s; this process has %s with %s",
                           pk, features, version, list(FEATURES), sklearn.__version__)
            return None
        data = RerankerModel.objects.values_list("model", flat=True).get(pk=pk)
        _learned.clear()
        _learned[pk] = LearnedScorer.from_bytes(data, features, pk)
        return _learned[pk]
