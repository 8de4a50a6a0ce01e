"""The texts the model embeds, and the pooling that turns vectors into creator and interest
vectors.

Pure functions: no database, no model. DESIGN.md fixes the video document's shape.

- A creator's vector is the mean of its bio's vector and its last ``CREATOR_RECENT_VIDEOS``
  videos' (each video's vector embeds its caption), optionally weighted by post time: with a
  half-life of ``h`` days a post ``d`` days older than the creator's newest weighs ``0.5 ** (d/h)``
  (``recency_weights``; the bio weighs as the newest post).
- A viewer's interest is the mean of the vectors of their last ``INTEREST_RECENT`` comments (or
  engaged videos), with how many there were: under ``THIN_INTEREST`` it is thin, and callers
  should lean on other evidence (``Interest.thin``).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: How many of a creator's most recent videos shape its vector.
CREATOR_RECENT_VIDEOS = 30
#: How many of a viewer's last comments (or engaged videos) make their interest vector.
INTEREST_RECENT = 100
#: An interest pooled from fewer texts than this is thin.
THIN_INTEREST = 20


def video_document(caption: str, music_name: str, music_author: str, hashtags: Iterable[str]) -> str:
    """``"{caption} | music: {music name} by {music author} | tags: {hashtags}"``."""
    tags = " ".join(f"#{tag}" for tag in hashtags)
    return f"{caption.strip()} | music: {music_name.strip()} by {music_author.strip()} | tags: {tags}"


def document_hash(*parts: str) -> str:
    """A stable fingerprint of the inputs of a vector (sha256 hex of the parts, in order)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")  # separator, so ("ab", "c") and ("a", "bc") differ
    return digest.hexdigest()


def creator_document_hash(bio: str, video_hashes: Sequence[str], half_life_days: float | None = None,
                          post_times: Sequence[float | None] = ()) -> str:
    """Fingerprint of a creator vector's inputs: its bio and its recent videos' document hashes
    (and, when a decay weighs them, the half-life and the posts' times)."""
    if half_life_days is None:
        return document_hash(bio.strip(), *video_hashes)
    return document_hash(bio.strip(), *video_hashes, f"half-life:{half_life_days:g}", *map(str, post_times))


def recency_weights(post_times: Sequence[float | None], half_life_days: float | None) -> np.ndarray:
    """The weight of each post (unix seconds; None when unknown) in its creator's vector:
    ``0.5 ** (days older than the newest post / half_life_days)``; all 1 without a half-life.
    A post of unknown time weighs as the oldest known one. Relative to the newest post, not to
    now, so a vector does not go stale with the clock."""
    weights = np.ones(len(post_times), dtype=np.float64)
    known = [t for t in post_times if t is not None]
    if half_life_days is None or not known:
        return weights
    if half_life_days <= 0:
        raise ValueError(f"the half-life must be positive days, not {half_life_days}")
    newest = max(known)
    ages = np.array([(newest - (min(known) if t is None else t)) / 86400.0 for t in post_times])
    return 0.5 ** (ages / half_life_days)


def normalize(vector: np.ndarray) -> np.ndarray:
    """L2-normalise; a zero vector stays zero rather than becoming NaN."""
    norm = float(np.linalg.norm(vector))
    return vector if norm == 0.0 else vector / norm


def mean_pool(vectors: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray | None:
    """Mean (weighted by ``weights`` when given) of the normalised vectors, re-normalised; None
    when there is nothing to pool."""
    rows = [normalize(np.asarray(v, dtype=np.float32)) for v in vectors]
    if not rows:
        return None
    pooled = normalize(np.average(rows, axis=0, weights=None if weights is None else np.asarray(weights, dtype=np.float64)))
    return pooled.astype(np.float32) if np.any(pooled) else None


@dataclass(frozen=True)
class Interest:
    """A viewer's interest vector (None when there was nothing to pool) and how many texts or
    videos it pools."""

    vector: np.ndarray | None
    count: int

    @property
    def thin(self) -> bool:
        return self.count < THIN_INTEREST


def pool_interest(vectors: Sequence[np.ndarray]) -> Interest:
    """The interest of the vectors of a viewer's last comments or engaged videos, newest first:
    the mean of the first ``INTEREST_RECENT``."""
    recent = list(vectors)[:INTEREST_RECENT]
    return Interest(mean_pool(recent), len(recent))
