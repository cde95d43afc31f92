"""Shared test set-up: small word corpora and the environment of `scaling` subprocesses."""

import os
import random


def word_corpus(root, n_docs: int, seed: int, words: list[str], lines: int = 200,
                per_line: int = 10) -> list[str]:
    """Write n_docs files of random words into `root`; return the --set overrides that train
    on them with a data cache beside them."""
    rng = random.Random(seed)
    for i in range(n_docs):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(per_line))
                         for _ in range(lines))
        (root / f"doc{i}.txt").write_text(text, encoding="utf-8")
    return [f"data.source=text:{root}/doc*.txt", f"data.cache_dir={root / 'cache'}"]


def subprocess_env(root, **extra) -> dict:
    """CPU-only, with a persistent XLA compilation cache shared by the test's processes
    (the second compile of the same step is a cache hit)."""
    return dict(os.environ, JAX_PLATFORMS="cpu",
                JAX_COMPILATION_CACHE_DIR=str(root / "xla_cache"),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0", **extra)
