"""JAX's persistent compilation cache for `scaling train` (on by default: train.compile_cache).

A rerun or resume of the same model on the same devices loads the compiled train and eval
steps from disk instead of compiling them again; `CacheEvents` counts the hits and misses
of a session (summary.json / sessions.jsonl `compile_cache`). The cache lives under the data cache
directory (data.cache_dir, else $SCALING_CACHE, else ~/.cache/scaling) in `xla/`; an
explicit $JAX_COMPILATION_CACHE_DIR (the tests set one) takes precedence.
"""

from __future__ import annotations

import os

from scaling import storage
from scaling.config import Config


def enable_compile_cache(config: Config) -> str | None:
    """Point JAX's persistent compilation cache at its directory (created if missing) when
    `config.train.compile_cache` is set; returns the directory, or None when off. Must run
    before the process compiles anything: JAX fixes the cache at its first compilation."""
    if not config.train.compile_cache:
        return None
    import jax

    from scaling.data.cache import cache_root

    path = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(
        cache_root(config.data.cache_dir) / "xla")
    storage.makedirs(path)  # a URI too: JAX's cache reads and writes through etils.epath
    jax.config.update("jax_compilation_cache_dir", path)
    return path


HIT, MISS = "/jax/compilation_cache/cache_hits", "/jax/compilation_cache/cache_misses"
SAVED = "/jax/compilation_cache/compile_time_saved_sec"


class CacheEvents:
    """Counts the persistent cache's hits, misses (a compiled executable written to the
    cache) and the compile seconds the hits saved, from JAX's own monitoring events, between
    `start()` and `stop()`; `mark()` / `since(mark)` count a window (the first step).
    Process-wide: listeners see every compilation of the process while started."""

    def __init__(self):
        self.hits = self.misses = 0
        self.saved_s = 0.0

    def _event(self, event: str, **_) -> None:
        if event == HIT:
            self.hits += 1
        elif event == MISS:
            self.misses += 1

    def _duration(self, event: str, duration: float, **_) -> None:
        if event == SAVED:
            self.saved_s += duration

    def start(self) -> CacheEvents:
        from jax import monitoring

        monitoring.register_event_listener(self._event)
        monitoring.register_event_duration_secs_listener(self._duration)
        return self

    def stop(self) -> None:
        from jax import monitoring

        monitoring.unregister_event_listener(self._event)
        monitoring.unregister_event_duration_listener(self._duration)

    def mark(self) -> tuple[int, int]:
        return self.hits, self.misses

    def since(self, mark: tuple[int, int]) -> dict:
        return {"hits": self.hits - mark[0], "misses": self.misses - mark[1]}

    def summary(self, first_step: dict | None) -> dict:
        """summary.json's `compile_cache`: the session's totals and the first step's share
        (the train step's compilation: a hit on a resume of the same job)."""
        return {"hits": self.hits, "misses": self.misses,
                "saved_s": round(self.saved_s, 3), "first_step": first_step}
