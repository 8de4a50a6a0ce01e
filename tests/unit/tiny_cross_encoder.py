"""A tiny cross-encoder the tests build themselves: no cross-encoder weights ship with tokfeed,
and nothing is downloaded. A one-layer BERT with random (seeded) weights and a word-level
vocabulary made from the words given, saved as a sentence-transformers ``CrossEncoder`` folder.
Its scores mean nothing; they are deterministic, and spread enough (a wide initialisation) to
reorder near-ties."""
import os
import re
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_cross_encoder(folder: Path, texts, seed: int = 0) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({w for text in texts for w in re.findall(r"[a-z0-9]+", text.lower())})
    (folder / "vocab.txt").write_text("\n".join(SPECIAL + words) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(SPECIAL) + len(words), hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=256, num_labels=1,
                        initializer_range=1.0)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder
