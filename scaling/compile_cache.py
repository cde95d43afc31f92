"""JAX's persistent compilation cache for `scaling train` (on by default: train.compile_cache).

A rerun or resume of the same model on the same devices loads the compiled train and eval
steps from disk instead of compiling them again. The cache lives under the data cache
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
