"""The learned reranker: features, training from the feed's own log, and the ``learned`` reranker
of the partner funnel. Django-free: arrays, dataclasses and scikit-learn.

**Examples.** Every impression a viewer reacted to (a view or an action on its video, in its
session) is one example; its label is 1 when the video reached the long view (``HIGH_ATTN``: the
algorithm's long-view threshold, in ms or watch ratio) or got a positive action (``LIKE``,
``SHARE``, ``FOLLOW_CREATOR``) in that session (``LABEL_SIGNALS``), else 0. Impressions never
reached are not examples: no reaction says nothing. Each example's features are computed from
what the session knew *when it was served*: the signals before the impression (so no example
sees its own outcome).

**Features** (``FEATURES``, each in [0, 1], the same at training and at serving):
``similarity`` (cosine to the user vector: the mean of the recent positives, or the partner's
query), ``positive_similarity`` / ``negative_similarity`` (the largest cosine to one of the
recent positive / negative videos, by the algorithm's signal polarities), ``creator_affinity``
(the creator's vector to the user vector), ``co_occurrence`` (item-item cosine over other
sessions' positive histories, ``co_occurrence``), ``popularity`` (log plays on a fixed scale),
``like_rate`` (likes / plays), ``freshness`` (halving every 30 days), ``duration`` (up to
5 minutes) and ``language_match`` (1 same, 0 different, 0.5 unknown). Unknown values are 0.

**Model.** ``fit`` trains scikit-learn's ``HistGradientBoostingClassifier`` (small, fast on two
cores, no new dependency, handles features on different scales and their interactions; with
monotonic priors, ``MONOTONIC``) through the project's one learned-scorer wrapper
(``learned_scorer.LearnedScorer``: feature order checked, one OpenMP thread, bytes for the
database) on the examples; its validation AUC is measured on sessions held out of training (a
quarter, by session so no viewer is on both sides), next to the AUC of ``similarity`` alone on
the same rows (what the hand-weighted reranker leans on); the stored model is then refitted on
every example.
``TrainingRefused`` says why a log cannot train one (too few examples, one class).
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..vectors import normalize, normalize_rows
from .candidates import Candidate
from .funnel import FRESH_HALF_LIFE_DAYS, FunnelContext, VideoFacts, hand_weighted, query_vector, reranker
from .learned_scorer import LearnedScorer

FEATURES: tuple[str, ...] = (
    "similarity", "positive_similarity", "negative_similarity", "creator_affinity", "co_occurrence",
    "popularity", "like_rate", "freshness", "duration", "language_match",
)
#: Signals that make an impression a positive example (and a video part of a session's positive
#: history for co-occurrence): the long view and the positive actions.
LABEL_SIGNALS = frozenset({"HIGH_ATTN", "LIKE", "SHARE", "FOLLOW_CREATOR"})
#: A profile keeps the last this many positive and negative videos (the partner API's
#: ``SESSION_LAST_N``: training sees what serving will).
PROFILE_LAST_N = 100
#: Plays that make popularity 1 (log scale): a fixed scale, so a value means the same in every
#: request and in training.
POPULARITY_SCALE = 1e9
DURATION_SCALE_S = 300.0
#: Below these, training is refused (a model from a handful of examples is noise).
MIN_EXAMPLES = 200
MIN_PER_CLASS = 10
VALIDATION_SHARE = 0.25


class TrainingRefused(Exception):
    """The log cannot train a model; the message says why, for the operator."""


@dataclass(frozen=True)
class ViewerProfile:
    """What is known of the viewer when candidates are ranked: the unit ``query`` (None:
    nothing yet), the vectors of recent ``positives`` / ``negatives`` (rows; may be empty), the
    ``positive_ids`` (co-occurrence) and the viewer's ``language`` (None: unknown)."""

    query: np.ndarray | None
    positives: np.ndarray
    negatives: np.ndarray
    positive_ids: tuple[int, ...] = ()
    language: str | None = None


def _max_cosine(vectors: np.ndarray, others: np.ndarray) -> np.ndarray:
    if others is None or not len(others):
        return np.zeros(len(vectors))
    return np.clip((vectors @ normalize_rows(others).T).max(axis=1), 0.0, 1.0)


def feature_matrix(profile: ViewerProfile, vectors: np.ndarray, facts: Sequence[VideoFacts],
                   co_occurrence: np.ndarray, now: float) -> np.ndarray:
    """One row of ``FEATURES`` per candidate: ``vectors`` (unit rows) and ``facts`` (with
    ``creator_affinity`` against ``profile.query``) in the same order, ``co_occurrence`` per
    candidate, ``now`` in epoch seconds."""
    n = len(facts)
    vectors = np.asarray(vectors, dtype=np.float64).reshape(n, -1) if n else np.zeros((0, 1))
    out = np.zeros((n, len(FEATURES)))
    if not n:
        return out
    if profile.query is not None:
        out[:, 0] = np.clip(vectors @ np.asarray(profile.query, dtype=np.float64), 0.0, 1.0)
    out[:, 1] = _max_cosine(vectors, profile.positives)
    out[:, 2] = _max_cosine(vectors, profile.negatives)
    out[:, 4] = np.clip(np.asarray(co_occurrence, dtype=np.float64), 0.0, 1.0)
    language = (profile.language or "").lower()
    for row, f in enumerate(facts):
        out[row, 3] = max(0.0, float(f.creator_affinity or 0.0))
        plays = max(0, f.plays)
        out[row, 5] = min(1.0, math.log1p(plays) / math.log1p(POPULARITY_SCALE))
        out[row, 6] = min(1.0, max(0, f.likes) / plays) if plays else 0.0
        if f.created_at is not None:
            out[row, 7] = 0.5 ** (max(0.0, now - f.created_at) / 86400 / FRESH_HALF_LIFE_DAYS)
        out[row, 8] = min(1.0, max(0, f.duration_s) / DURATION_SCALE_S)
        out[row, 9] = 0.5 if not (language and f.language) else float(f.language.lower() == language)
    return out


def co_occurrence(histories: Mapping[int, frozenset | set], positives: Sequence[int], ids: Sequence[int],
                  session=None) -> np.ndarray:
    """For each of ``ids``: the largest, over ``positives``, cosine between the two videos' sets
    of sessions in ``histories`` (``{video: sessions with a positive on it}``), ``session`` left
    out of every set (a viewer's own history is not "other viewers'"). 0 without positives."""
    out = np.zeros(len(ids))
    if not positives:
        return out

    def others(video):
        sessions = histories.get(video, ())
        return sessions - {session} if session in sessions else sessions

    positive_sets = [s for s in (others(p) for p in dict.fromkeys(positives)) if s]
    if not positive_sets:
        return out
    for n, video in enumerate(ids):
        mine = others(video)
        if mine:
            out[n] = max(len(mine & s) / math.sqrt(len(mine) * len(s)) for s in positive_sets)
    return out


def majority_language(languages: Sequence[str]) -> str | None:
    """The most common non-empty language (the earliest of a tie), None when there is none."""
    counted = Counter(lang.lower() for lang in languages if lang)
    return counted.most_common(1)[0][0] if counted else None


# --- the log --------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoggedSignal:
    """A signal of the log: ``at`` in epoch seconds; ``polarity`` by the session's algorithm
    (+1 pulls, -1 pushes, 0 neither); ``positive`` whether its type is in ``LABEL_SIGNALS``."""

    session: str
    video: int
    at: float
    polarity: int
    positive: bool


@dataclass(frozen=True)
class LoggedImpression:
    """An impression the viewer reacted to, with its label."""

    session: str
    video: int
    at: float
    label: int


@dataclass
class RerankerLog:
    """The log a reranker trains on, and what it needs of the catalog: ``vectors`` and
    ``facts`` (``creator_affinity`` unset) of every video in it, ``creator_vectors`` by creator."""

    impressions: list[LoggedImpression]
    signals: list[LoggedSignal]
    vectors: Mapping[int, np.ndarray] = field(default_factory=dict)
    facts: Mapping[int, VideoFacts] = field(default_factory=dict)
    creator_vectors: Mapping[int, np.ndarray] = field(default_factory=dict)

    def video_ids(self) -> set[int]:
        return {i.video for i in self.impressions} | {s.video for s in self.signals}


def first_positives(signals: Sequence[LoggedSignal]) -> dict[int, dict[str, float]]:
    """``{video: {session: when its first LABEL_SIGNALS signal on the video came}}``."""
    found: dict[int, dict[str, float]] = defaultdict(dict)
    for s in signals:
        if s.positive and s.at < found[s.video].get(s.session, math.inf):
            found[s.video][s.session] = s.at
    return found


def histories_before(firsts: Mapping[int, Mapping[str, float]], videos: Sequence[int], at: float) -> dict[int, frozenset]:
    """The positive histories (``{video: sessions with a positive on it}``) of ``videos`` as they
    stood at ``at``: a training example's co-occurrence must not know what other viewers did
    after it was served, any more than serving could."""
    return {video: frozenset(session for session, when in firsts.get(video, {}).items() if when < at)
            for video in dict.fromkeys(videos)}


def profile_from_signals(prior: Sequence[LoggedSignal], vectors: Mapping[int, np.ndarray],
                         facts: Mapping[int, VideoFacts]) -> ViewerProfile:
    """The profile a session's ``prior`` signals (oldest first) make: its last ``PROFILE_LAST_N``
    positive and negative videos (newest first, each once) and their mean as the query."""
    positives, negatives = [], []
    for s in reversed(prior):
        if s.video not in vectors:
            continue
        if s.polarity > 0 and s.video not in positives and len(positives) < PROFILE_LAST_N:
            positives.append(s.video)
        elif s.polarity < 0 and s.video not in negatives and len(negatives) < PROFILE_LAST_N:
            negatives.append(s.video)
    dim = len(next(iter(vectors.values()))) if vectors else 1
    positive_vectors = np.stack([vectors[v] for v in positives]) if positives else np.zeros((0, dim))
    negative_vectors = np.stack([vectors[v] for v in negatives]) if negatives else np.zeros((0, dim))
    return ViewerProfile(
        query=query_vector(positive_vectors) if positives else None, positives=positive_vectors,
        negatives=negative_vectors, positive_ids=tuple(positives),
        language=majority_language([facts[v].language for v in positives if v in facts]),
    )


def examples_from_log(log: RerankerLog) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, groups)``: one row of features per impression of the log whose video has a
    vector and facts, its label and its session (for a split by session)."""
    firsts = first_positives(log.signals)
    by_session: dict[str, list[LoggedSignal]] = defaultdict(list)
    for s in sorted(log.signals, key=lambda s: s.at):
        by_session[s.session].append(s)
    rows, labels, groups = [], [], []
    for impression in sorted(log.impressions, key=lambda i: (i.session, i.at, i.video)):
        if impression.video not in log.vectors or impression.video not in log.facts:
            continue
        signals = by_session.get(impression.session, [])
        prior = [s for s in signals if s.at < impression.at]
        profile = profile_from_signals(prior, log.vectors, log.facts)
        facts = log.facts[impression.video]
        creator_vector = log.creator_vectors.get(facts.creator)
        affinity = (None if creator_vector is None or profile.query is None
                    else float(normalize(creator_vector) @ profile.query))
        histories = histories_before(firsts, [*profile.positive_ids, impression.video], impression.at)
        cooc = co_occurrence(histories, profile.positive_ids, [impression.video], impression.session)
        rows.append(feature_matrix(profile, normalize(log.vectors[impression.video])[None, :],
                                   [replace(facts, creator_affinity=affinity)], cooc, impression.at)[0])
        labels.append(impression.label)
        groups.append(impression.session)
    X = np.array(rows) if rows else np.zeros((0, len(FEATURES)))
    return X, np.array(labels, dtype=np.int64), np.array(groups, dtype=object)


# --- training -------------------------------------------------------------------------------

@dataclass
class TrainedReranker:
    model: LearnedScorer
    metrics: dict
    n_examples: int
    n_positive: int


#: The direction each feature may push the score (+1 up, -1 down, 0 free): nearer the viewer's
#: taste or its co-watched videos never lowers it, nearer a rejected video never raises it.
#: Priors that cost a small log nothing and keep a few noisy examples from teaching the opposite.
MONOTONIC = {"similarity": 1, "positive_similarity": 1, "negative_similarity": -1, "co_occurrence": 1}


def new_estimator(seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier

    # Small trees, a slow rate and the monotonic priors: on 1200 simulated feed impressions
    # (60 viewers) 150 rounds of 15-leaf trees fitted the training sessions almost perfectly
    # (train AUC 0.997) and held-out sessions worse (validation AUC 0.748-0.795 over three
    # seeds) than this (0.773-0.820; log loss 0.39-0.48 against 0.46-0.54). Early stopping
    # off: a fixed number of rounds trains the same model from the same data.
    return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_leaf_nodes=8, min_samples_leaf=30,
                                          l2_regularization=1.0, early_stopping=False, random_state=seed,
                                          monotonic_cst=[MONOTONIC.get(name, 0) for name in FEATURES])


def _split(y: np.ndarray, groups: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation rows: a quarter of the sessions held out when that leaves both
    classes on each side, else (a few big sessions) a quarter of the rows, stratified."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

    if len(set(groups)) >= 4:
        for attempt in range(10):
            train, test = next(GroupShuffleSplit(1, test_size=VALIDATION_SHARE, random_state=seed + attempt)
                               .split(y, y, groups))
            if len(set(y[train])) == 2 and len(set(y[test])) == 2:
                return train, test
    return next(StratifiedShuffleSplit(1, test_size=VALIDATION_SHARE, random_state=seed).split(y, y))


def fit(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *, seed: int = 0,
        min_examples: int = MIN_EXAMPLES) -> TrainedReranker:
    """Train on ``(X, y)`` (``groups``: each row's session), measure on held-out sessions, refit
    on everything. ``TrainingRefused`` when there are fewer than ``min_examples`` rows or fewer
    than ``MIN_PER_CLASS`` of either label."""
    from sklearn.metrics import log_loss, roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    positives = int(y.sum())
    if len(y) < min_examples:
        raise TrainingRefused(f"{len(y)} labelled impressions, fewer than the {min_examples} needed to train the "
                              "reranker; the hand-weighted reranker stays in use")
    if min(positives, len(y) - positives) < MIN_PER_CLASS:
        raise TrainingRefused(f"{positives} positive and {len(y) - positives} negative impressions: each needs at "
                              f"least {MIN_PER_CLASS} to train the reranker; the hand-weighted reranker stays in use")
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    train, test = _split(y, groups, seed)
    held_out = LearnedScorer.fit(X[train], y[train], FEATURES, estimator=new_estimator(seed))
    predicted, train_predicted = held_out.score(X[test]), held_out.score(X[train])
    final = LearnedScorer.fit(X, y, FEATURES, estimator=new_estimator(seed))
    metrics = {
        "validation_auc": float(roc_auc_score(y[test], predicted)),
        "validation_log_loss": float(log_loss(y[test], predicted, labels=[0, 1])),
        "similarity_auc": float(roc_auc_score(y[test], X[test, FEATURES.index("similarity")])),
        "train_auc": float(roc_auc_score(y[train], train_predicted)),
        "train_examples": int(len(train)),
        "validation_examples": int(len(test)),
        "sessions": int(len(set(groups.tolist()))),
        "seed": seed,
    }
    return TrainedReranker(final, metrics, int(len(y)), positives)


# --- serving --------------------------------------------------------------------------------

def context_profile(context: FunnelContext) -> ViewerProfile:
    dim = len(context.query)
    return ViewerProfile(
        query=context.query,
        positives=context.positives if context.positives is not None else np.zeros((0, dim)),
        negatives=context.negatives if context.negatives is not None else np.zeros((0, dim)),
        positive_ids=tuple(context.positive_ids),
        language=context.language or context.filters.language,
    )


@reranker("learned")
def learned(context: FunnelContext, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Orders ``candidates`` by the context's ``learned_model`` (the probability of a long view
    or a like), each keeping its ``FEATURES`` as parts; the hand-weighted order when the context
    has no model."""
    if context.learned_model is None:
        return hand_weighted(context, candidates)
    if not candidates:
        return []
    ids = [c.id for c in candidates]
    facts = context.facts_of(ids)
    cooc = context.catalog.co_occurrence(tuple(context.positive_ids), ids, context.session)
    X = feature_matrix(context_profile(context), context.catalog.vectors(ids), [facts[i] for i in ids], cooc,
                       context.now)
    scores = context.learned_model.score(X)
    scored = [Candidate(c.id, c.similarity, c.source, float(s), dict(zip(FEATURES, map(float, row))), facts[c.id].creator)
              for c, s, row in zip(candidates, scores, X)]
    return sorted(scored, key=lambda c: (-c.score, c.id))
