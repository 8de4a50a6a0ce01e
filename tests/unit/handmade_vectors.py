"""Small hand-made vector sets for the ranking tests: unit axes and tight clusters around them."""
import numpy as np

from algorithms.vectors import normalize, normalize_rows

DIM = 8


def e(i):
    """The unit vector along axis ``i``."""
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


def cluster(center, n, spread, seed):
    """``n`` unit vectors scattered around ``center`` (seeded)."""
    rng = np.random.default_rng(seed)
    return normalize_rows(normalize(center) + spread * rng.standard_normal((n, DIM)))
