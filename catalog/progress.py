"""Progress for long commands: a bar on a terminal, plain log lines anywhere else."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def progress_reporter(total: int, label: str, *, stream, enabled: bool = True, every: int | None = None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``. On a TTY it drives a tqdm bar; otherwise it writes a line such as
    ``embed videos: 128/1000 (12.8%) 85.1/s`` whenever ``every`` more items are done (default:
    every tenth of the total) and at the end, so logs of non-interactive runs still show progress.
    """
    if not enabled or total == 0:
        yield lambda n=1: None
        return
    if getattr(stream, "isatty", lambda: False)():
        from tqdm import tqdm

        # tqdm redraws with "\r"; Django's OutputWrapper would append a newline to each write.
        with tqdm(total=total, desc=label, file=getattr(stream, "_out", stream), unit="item") as bar:
            yield bar.update
        return

    every = every or max(1, total // 10)
    state = {"done": 0, "reported": 0}
    started = time.perf_counter()

    def advance(n: int = 1) -> None:
        state["done"] += n
        done = state["done"]
        if done - state["reported"] >= every or done >= total:
            state["reported"] = done
            rate = done / max(time.perf_counter() - started, 1e-9)
            stream.write(f"{label}: {done}/{total} ({100 * done / total:.1f}%) {rate:.1f}/s")

    yield advance
