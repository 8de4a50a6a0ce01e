"""Evidence ranking: score candidates against what the viewer watched *and* what they skipped.

Each recent signal is evidence about the videos near it: a long watch says "more like this", a
skip or a "not interested" says "not this". A candidate's evidence is kernel-weighted by cosine,
``k(x, s) = exp((cos(x, s) - 1) / kernel_width)``, so a video right next to a skipped one drops
even when it is also near something watched. Its score is

    liked  = (positive mass + PRIOR_WEIGHT * PRIOR_LIKE) / (all mass + PRIOR_WEIGHT)
    bonus  = explore_bonus / sqrt(1 + density)
    score  = liked + bonus

With ``tag_weight``, a long watch also speaks for the videos that share its rare hashtags: the
positive kernel adds ``tag_weight * tag cosine`` (``catalog.tag_cosine``), so a taste the
vectors scatter (videos that are funny for different reasons) is still found from what its
videos are tagged. A skip does not speak against a whole tag, only against what lies near it:
a viewer skips most of a topic's videos and still likes one creator's among them.

``liked`` is the kernel estimate of the chance the viewer likes it (shrunk toward the prior where
there is little evidence); ``density`` (the unweighted kernel sum) says how much the viewer has
been shown near it, so the bonus favours regions not yet tried: exploration that covers the
catalog instead of drawing uniformly, and that one noisy long watch cannot capture (its
neighbours' skips outweigh it). Vectors are unit length (cosine = dot product).

With relative coverage (``judge_coverage_relative_to``), ``density`` is read against how many
videos lie near the candidate (``relative_density``, 1 for a typical video): the bonus is
``explore_bonus / sqrt(1 + density / relative_density)``. The kernel reaches far, so a video in
a crowded region gathers mass from every video shown anywhere around it, and an isolated one
little: read raw, "least shown near it" means "most isolated", and a taste in a crowded region
(one creator's near-identical videos among their topic's) is explored a third as often as a
uniform draw would, and was rarely found. The other way round, a sparse region's relative density
is below 1, and what was shown near it counts as more of it tried; ``min_relative_density`` bounds
that (at 0.25, one video shown near an isolated one counted four times, and the tastes in sparse
regions lost much of what raw coverage had given them; at 1, crowded regions lose their advantage
too, since densities are read against the mean).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..vectors import WeightedSignal, normalize
from .catalog import tag_cosine

#: Before any evidence, a video is liked with this probability (a feed's typical hit rate)...
PRIOR_LIKE = 0.1
#: ... held with the strength of one signal of this weight (a mid-attention watch is 14).
PRIOR_WEIGHT = 10.0
#: A picked video counts as evidence of this weight while the rest of its batch is chosen (its
#: expected outcome), so one batch does not stack near-duplicates.
PICKED_WEIGHT = 10.0
#: A candidate's relative density is held at least this by default (``min_relative_density``
#: sets it per state): an outlier far from the whole sample would otherwise count as never
#: covered, whatever was shown near it.
MIN_RELATIVE_DENSITY = 0.25


@dataclass(frozen=True)
class Evidence:
    """Recent signals as evidence: one row per signal, its positive and negative weight."""

    vectors: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    #: The signals' videos (None where unknown), one per row.
    videos: tuple[int | None, ...] = ()

    @classmethod
    def from_signals(cls, signals: Sequence[WeightedSignal], last_n: int, decay: float = 0.0) -> "Evidence":
        """The last ``last_n`` signals with a polarity (oldest first in ``signals``), each weighted
        ``weight * exp(-decay * recency rank)``; neutral ones carry no evidence."""
        recent = [s for s in signals if s.polarity != 0][::-1][:last_n] if last_n > 0 else []
        if not recent:
            return cls.empty(signals[0].vector.shape[-1] if signals else 0)
        weights = np.array([s.weight * math.exp(-decay * (rank + s.age)) for rank, s in enumerate(recent)])
        polarity = np.array([s.polarity for s in recent])
        return cls(
            np.stack([normalize(s.vector) for s in recent]),
            np.where(polarity > 0, weights, 0.0),
            np.where(polarity < 0, weights, 0.0),
            tuple(s.video for s in recent),
        )

    @classmethod
    def empty(cls, dim: int) -> "Evidence":
        return cls(np.zeros((0, dim), dtype=np.float32), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.positive)


def kernel(vectors: np.ndarray, others: np.ndarray, width: float) -> np.ndarray:
    """``exp((cos - 1) / width)`` between each row of ``vectors`` and each of ``others``."""
    if len(others) == 0 or len(vectors) == 0:
        return np.zeros((len(vectors), len(others)))
    return np.exp((vectors.astype(np.float64) @ others.T.astype(np.float64) - 1.0) / width)


def trust(evidence: Evidence, width: float, corroboration: float, tag_weight: float = 0.0,
          tags: Sequence[dict] | None = None) -> np.ndarray:
    """How far each positive signal is to be believed, from 0 to 1, by what the viewer did near it.

    A long watch is a hypothesis ("more like this") that the videos shown near it test: their
    skips contradict it, their long watches corroborate it. Signal ``j``'s trust is

        (own weight + support) / (own weight + support + corroboration * contradiction)

    where support and contradiction are the other signals' positive and negative weights, each
    times its kernel to ``j`` (by vector, plus ``tag_weight`` times the tag cosine when ``tags``,
    the evidence's tag vectors, are given). One noisy long watch whose neighbours the viewer then
    skips fades, where a taste's long watches hold each other up; a negative signal's trust is 1.
    """
    near = kernel(evidence.vectors, evidence.vectors, width)
    if tag_weight and tags is not None:
        near = near + tag_weight * tag_cosine(tags, tags)
    np.fill_diagonal(near, 0.0)
    own = evidence.positive
    held = own + near @ evidence.positive
    against = corroboration * (near @ evidence.negative)
    return np.where(own > 0, held / np.maximum(held + against, 1e-12), 1.0)


class EvidenceScores:
    """The evidence on a pool of candidate vectors, updated as picks are made.

    ``liked``, ``bonus`` and ``score`` follow the module's formula; ``pick`` adds a chosen
    candidate as pretend evidence (``PICKED_WEIGHT`` split by its ``liked``), which lowers the
    bonus around it and keeps its near-duplicates from following it into the same batch.
    ``tags`` (with ``tag_weight`` > 0) are the candidates' and the evidence's tag vectors:
    ``(candidates' [{tag: weight}], evidence's [{tag: weight}])``; they add to the positive mass
    only (see the module's docstring).
    """

    def __init__(self, vectors: np.ndarray, evidence: Evidence, width: float, explore_bonus: float,
                 tag_weight: float = 0.0, tags: tuple[Sequence[dict], Sequence[dict]] | None = None,
                 corroboration: float = 0.0):
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.width = width
        self.explore_bonus = explore_bonus
        k = kernel(self.vectors, evidence.vectors, width)
        k_liked = k
        if tag_weight and tags is not None and len(evidence):
            k_liked = k + tag_weight * tag_cosine(*tags)
        positive = evidence.positive
        if corroboration and len(evidence):
            evidence_tags = tags[1] if tag_weight and tags is not None else None
            positive = positive * trust(evidence, width, corroboration, tag_weight, evidence_tags)
        self.positive = k_liked @ positive if len(evidence) else np.zeros(len(self.vectors))
        self.negative = k @ evidence.negative if len(evidence) else np.zeros(len(self.vectors))
        self.density = k.sum(axis=1) if len(evidence) else np.zeros(len(self.vectors))
        self.relative_density = np.ones(len(self.vectors))

    def judge_coverage_relative_to(self, sample: Sequence[int], floor: float = MIN_RELATIVE_DENSITY) -> None:
        """Read coverage (the bonus, and ``covered``) against how crowded the catalog is around
        each candidate: ``relative_density`` becomes each candidate's mean kernel to the
        candidates at ``sample`` (indices of videos drawn uniformly from the catalog: an estimate
        of the catalog's density there, itself left out), over the sample's own mean, at least
        ``floor``. A floor of 1 discounts what was shown near a crowded region and leaves a
        sparse one judged raw; below 1, what was shown near a sparse region counts up to ``1 /
        floor`` times. Fewer than two sampled candidates: unchanged."""
        sample = np.asarray(sample, dtype=np.int64)
        if len(sample) < 2:
            return
        near = kernel(self.vectors, self.vectors[sample], self.width)
        near[sample, np.arange(len(sample))] = 0.0
        counted = np.full(len(self.vectors), float(len(sample)))
        counted[sample] -= 1.0
        density = near.sum(axis=1) / counted
        typical = float(density[sample].mean())
        if typical > 0:
            self.relative_density = np.maximum(density / typical, floor)

    @property
    def covered(self) -> np.ndarray:
        """How far each candidate's region has been tried: shown near it, and rejected near it (a
        skip weighing as much as the prior), relative to how crowded the region is."""
        return (self.density + self.negative / PRIOR_WEIGHT) / self.relative_density

    @property
    def liked(self) -> np.ndarray:
        return (self.positive + PRIOR_WEIGHT * PRIOR_LIKE) / (self.positive + self.negative + PRIOR_WEIGHT)

    @property
    def bonus(self) -> np.ndarray:
        return self.explore_bonus / np.sqrt(1.0 + self.density / self.relative_density)

    def score(self) -> np.ndarray:
        return self.liked + self.bonus

    def parts(self, i: int) -> dict[str, float]:
        """What made candidate ``i``'s score, for explanations."""
        return {
            "liked": round(float(self.liked[i]), 4),
            "watched_near": round(float(self.positive[i]), 4),
            "skipped_near": round(float(self.negative[i]), 4),
            "explore": round(float(self.bonus[i]), 4),
        }

    def count_as_shown(self, vectors: np.ndarray) -> None:
        """Count ``vectors`` (items already in the batch) as shown, with no outcome: only the
        bonus near them falls."""
        if len(vectors):
            self.density = self.density + kernel(self.vectors, np.asarray(vectors, dtype=np.float32), self.width).sum(axis=1)

    def pick(self, i: int) -> None:
        liked = float(self.liked[i])
        # By vectors alone: a pick's near-duplicates wait for another batch, its tag-mates need not.
        k = kernel(self.vectors, self.vectors[i:i + 1], self.width)[:, 0]
        self.positive = self.positive + k * PICKED_WEIGHT * liked
        self.negative = self.negative + k * PICKED_WEIGHT * (1.0 - liked)
        self.density = self.density + k
