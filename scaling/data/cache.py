"""The cache directory and atomic writes into it.

Several processes of one job may build the same dataset, tokenizer or token stream at the same
time. Every writer therefore writes under a private temporary name and publishes it with one
`os.replace`/`os.rename`; a reader sees either nothing or a complete file.

Paths are `etils.epath` paths (scaling/storage.py), so the cache may be a URI
(`data.cache_dir=gs://bucket/cache`): a file is then one object upload (atomic by itself),
.npy arrays are read whole instead of memory-mapped, and a built dataset directory is
published by epath's rename (a copy and a delete on object storage).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid

import numpy as np

from scaling import storage

STALE_SECONDS = 24 * 3600  # a temporary build older than this belongs to a dead process


def cache_root(cache_dir: str = ""):
    """`cache_dir`, else `$SCALING_CACHE`, else `~/.cache/scaling` (created if missing), as
    an `epath.Path` (a local directory or a URI)."""
    root = storage.path(cache_dir or os.environ.get("SCALING_CACHE") or "~/.cache/scaling")
    root.mkdir(parents=True, exist_ok=True)
    return root


def fingerprint(*parts: object) -> str:
    """A short stable hex digest of `parts` (their reprs), used to name cache entries."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def write_bytes_atomic(path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory and a rename (one
    upload on object storage)."""
    path = storage.path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage.write_atomic(path, data)


def save_npy_atomic(path, array: np.ndarray) -> None:
    """`np.save` to `path` atomically (temporary file + rename; one upload on object
    storage)."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes_atomic(path, buffer.getvalue())


def load_npy(path, mmap: bool = True) -> np.ndarray:
    """A cached .npy: memory-mapped read-only when local and `mmap`, else read whole."""
    if mmap and not storage.is_remote(path):
        return np.load(os.fspath(path), mmap_mode="r")
    with storage.path(path).open("rb") as f:
        return np.load(f)


def _rmtree_quietly(path) -> None:
    with contextlib.suppress(OSError):
        path.rmtree()


def temp_dir_beside(final):
    """A fresh private directory next to `final`, to be published with `publish_dir`."""
    final = storage.path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):  # left by a killed builder
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().mtime > STALE_SECONDS:
                stale.rmtree()
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def publish_dir(tmp, final) -> None:
    """Rename `tmp` to `final`; if another process published `final` first, keep theirs."""
    tmp, final = storage.path(tmp), storage.path(final)
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            raise
        _rmtree_quietly(tmp)


def build_tfds_dataset(make_builder, data_dir) -> None:
    """Prepare the TFDS builder `make_builder(tmp_dir)` in a private directory beside
    `data_dir`, then publish it there whole (a failure leaves nothing half-built)."""
    import contextlib
    import io

    import tensorflow_datasets as tfds

    data_dir = storage.path(data_dir)
    tmp = temp_dir_beside(data_dir)
    try:
        builder = make_builder(tmp)
        tfds.disable_progress_bar()
        with contextlib.redirect_stdout(io.StringIO()):  # TFDS says "Downloading": it is not
            builder.download_and_prepare()
    except BaseException:
        _rmtree_quietly(tmp)
        raise
    publish_dir(tmp, data_dir)
