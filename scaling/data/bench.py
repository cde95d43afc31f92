"""Input-pipeline throughput, for `scaling bench data` (never run in CI)."""

from __future__ import annotations

import time


def measure_throughput(data, steps: int = 20) -> float:
    """Tokens/s that `data` (any pipeline: LMData, MLMData, Seq2SeqData ...) delivers
    through its iterator on this process.

    Counts batch positions (local rows x seq_len) over `steps` batches after one warm-up batch
    (which pays for opening files); building caches happens before the clock starts.
    """
    it = data.iterator(0)
    next(it)
    start, tokens = time.perf_counter(), 0
    for _ in range(steps):
        tokens += next(it)["inputs"].size
    return tokens / (time.perf_counter() - start)
