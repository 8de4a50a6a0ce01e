import json
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from algorithms.offline_eval.data import DatasetError, load_dataset
from algorithms.offline_eval.run import Settings, evaluate
from algorithms.offline_eval.scoring import NEGATIVE_STRATEGIES
from catalog.embedding import EmbeddingModelError, encode
from catalog.progress import progress_reporter

#: Texts per call to the model: large enough that the model's own length-sorted batches stay
#: full, small enough for the progress bar to move.
EMBED_CHUNK = 1024


class Command(BaseCommand):
    help = (
        "Offline evaluation on the neutral format (items {id, text}; events {user, item, label, split}): "
        "popularity, content (bi-encoder cosine to the user's interest vector), item co-occurrence and "
        "the hybrid learned from the history split, side by side: mean per-user ROC AUC, NDCG@10, "
        "recall@10/50. Writes JSON and a ROC plot."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", required=True, help="items JSON lines: {\"id\", \"text\"}")
        parser.add_argument("--events", required=True,
                            help="events JSON lines: {\"user\", \"item\", \"label\": 1|0, \"split\": \"history\"|\"test\"}, in time order")
        parser.add_argument("--negatives", choices=NEGATIVE_STRATEGIES, default="uniform",
                            help="how negatives are drawn for the hybrid's training, and for tested users "
                                 "whose test rows hold none")
        parser.add_argument("--report", default="var/evaluate_auc", help="folder for evaluate_auc.json and evaluate_auc_roc.png")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--test-negatives", type=int, default=Settings.test_negatives,
                            help="negatives drawn for a tested user whose test rows hold only positives")
        parser.add_argument("--train-holdout", type=int, default=Settings.train_holdout,
                            help="a training query's positives: each user's last engagements in history")
        parser.add_argument("--train-negatives", type=int, default=Settings.train_negatives,
                            help="negatives per training query")
        parser.add_argument("--max-train-users", type=int, default=Settings.max_train_users, help="users sampled to train the hybrid")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
        parser.add_argument("--batch-size", type=int, default=64, help="texts per encode batch")

    def handle(self, *args, items, events, negatives, report, seed, test_negatives, train_holdout, train_negatives,
               max_train_users, device, batch_size, **options):
        for name, value, low in (("--test-negatives", test_negatives, 0), ("--train-negatives", train_negatives, 1),
                                 ("--train-holdout", train_holdout, 1),
                                 ("--max-train-users", max_train_users, 1), ("--batch-size", batch_size, 1),
                                 ("--seed", seed, 0)):
            if value < low:
                raise CommandError(f"{name} must be at least {low}")
        verbose = options["verbosity"] > 0
        started = time.perf_counter()
        try:
            dataset = load_dataset(Path(items), Path(events))
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        loaded = time.perf_counter() - started

        started = time.perf_counter()
        embeddings = self.embed(dataset.texts, device, batch_size, verbose)
        embedded = time.perf_counter() - started

        def progress(label, total):
            return progress_reporter(total, label, stream=self.stderr, enabled=verbose)

        run_settings = Settings(negatives=negatives, seed=seed, test_negatives=test_negatives,
                                train_holdout=train_holdout, train_negatives=train_negatives,
                                max_train_users=max_train_users)
        try:
            result = evaluate(dataset, embeddings, run_settings, progress)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        result.timings_s = {"load": round(loaded, 2), "embed": round(embedded, 2), **result.timings_s}
        result.hybrid["embedding_model"] = settings.EMBEDDING_MODEL
        self.stdout.write(result.table())

        folder = Path(report)
        folder.mkdir(parents=True, exist_ok=True)
        json_path, png_path = folder / "evaluate_auc.json", folder / "evaluate_auc_roc.png"
        json_path.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        result.plot(png_path)
        timings = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings_s.items())
        self.stderr.write(f"took {timings}")
        self.stdout.write(self.style.SUCCESS(f"wrote {json_path} and {png_path}"))

    def embed(self, texts: list[str], device: str, batch_size: int, verbose: bool) -> np.ndarray:
        """One unit row per item; zero rows for items without text. Each distinct text is encoded once."""
        distinct = list(dict.fromkeys(t for t in texts if t))
        vectors = np.zeros((len(distinct), settings.EMBEDDING_DIM), dtype=np.float32)
        try:
            with progress_reporter(len(distinct), "embed item texts", stream=self.stderr, enabled=verbose) as advance:
                for start in range(0, len(distinct), EMBED_CHUNK):
                    chunk = distinct[start:start + EMBED_CHUNK]
                    vectors[start:start + len(chunk)] = encode(chunk, model_name=settings.EMBEDDING_MODEL,
                                                               device=device, batch_size=batch_size)
                    advance(len(chunk))
        except EmbeddingModelError as exc:
            raise CommandError(str(exc)) from None
        row = {t: i for i, t in enumerate(distinct)}
        out = np.zeros((len(texts), settings.EMBEDDING_DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            if text:
                out[i] = vectors[row[text]]
        return out
