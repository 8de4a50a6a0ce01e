"""The optional cross-encoder of the partner funnel (its ``cross_encode`` stage).

No cross-encoder weights ship with tokfeed. ``CROSS_ENCODER_MODEL`` names a local folder
holding a sentence-transformers ``CrossEncoder`` (a Hugging Face sequence-classification model
with one output, and its tokenizer); unset, the stage does not run. The model loads once per
process, from disk only (the hub is switched off, as for the embedding model), and its scores
are the model's activated outputs, in [0, 1] for a one-label model.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings

from catalog.embedding import load_once, resolve_device


class CrossEncoderError(RuntimeError):
    pass


def check_model_folder(path: str) -> str:
    """What ``path`` holds, when it is a local model folder; else CrossEncoderError saying why.
    The one check of ``CROSS_ENCODER_MODEL`` (loading and ``/readyz`` both call it)."""
    if not Path(path, "config.json").is_file():
        raise CrossEncoderError(f"CROSS_ENCODER_MODEL={path!r} is not a local model folder (no config.json); "
                                "tokfeed never downloads models.")
    return f"model folder {path}"


def load_cross_encoder(path: str):
    """The ``CrossEncoder`` in the folder ``path``, loaded once per process
    (``catalog.embedding.load_once``)."""
    return load_once(("cross-encoder", path), lambda: _build_cross_encoder(path))


def _build_cross_encoder(path: str):
    check_model_folder(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import CrossEncoder

    return CrossEncoder(path, device=resolve_device("auto"), local_files_only=True)


def cross_encoder_scorer() -> Callable[[str, list[str]], np.ndarray] | None:
    """``score(query_text, documents) -> one score per document`` with the configured model, or
    None when ``CROSS_ENCODER_MODEL`` is unset."""
    path = getattr(settings, "CROSS_ENCODER_MODEL", "")
    if not path:
        return None
    model = load_cross_encoder(str(path))

    def score(query_text: str, documents: list[str]) -> np.ndarray:
        if not documents:
            return np.zeros(0)
        return np.asarray(model.predict([(query_text, d) for d in documents], convert_to_numpy=True,
                                        show_progress_bar=False), dtype=np.float64).reshape(len(documents), -1)[:, 0]

    return score
