"""The unit every ranking stage passes along: a candidate video and why it is there."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# Candidate sources: why an item is in the batch.
SOURCE_RANDOM = "random"
SOURCE_TOPIC = "topic"
SOURCE_ANN = "ann"
SOURCE_BIAS = "bias"
SOURCE_EXPLORE = "explore"
SOURCE_TAGS = "tags"  # shares rare hashtags with what the viewer watched


@dataclass(frozen=True)
class Candidate:
    """One item considered for (or picked into) a batch.

    ``similarity`` is the cosine to the query that found the item (the user, bias or topic
    vector), None for random picks. ``source`` is one of the ``SOURCE_*`` names. ``score`` and
    its ``parts`` are set by evidence ranking (``evidence.EvidenceScores``), to explain a pick
    (the "why this video" overlay, the partner API); ``creator`` is set by the stages that
    apply the per-creator cap.
    """

    id: int
    similarity: float | None
    source: str
    score: float | None = None
    parts: Mapping[str, float] = field(default_factory=dict, compare=False)
    creator: int | None = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "parts", MappingProxyType(dict(self.parts)))
