"""The texts the model embeds, and the pooling that turns vectors into creator vectors.

Pure functions: no database, no model. DESIGN.md fixes the video document's shape.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

#: How many of a creator's most recent videos shape its vector.
CREATOR_RECENT_VIDEOS = 30


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


def creator_document_hash(bio: str, video_hashes: Sequence[str]) -> str:
    """Fingerprint of a creator vector's inputs: its bio and its recent videos' document hashes."""
    return document_hash(bio.strip(), *video_hashes)


def normalize(vector: np.ndarray) -> np.ndarray:
    """L2-normalise; a zero vector stays zero rather than becoming NaN."""
    norm = float(np.linalg.norm(vector))
    return vector if norm == 0.0 else vector / norm


def mean_pool(vectors: Sequence[np.ndarray]) -> np.ndarray | None:
    """Mean of the normalised vectors, re-normalised; None when there is nothing to pool."""
    rows = [normalize(np.asarray(v, dtype=np.float32)) for v in vectors]
    if not rows:
        return None
    pooled = normalize(np.mean(rows, axis=0))
    return pooled.astype(np.float32) if np.any(pooled) else None
