"""The cache directory and atomic writes into it.

Several processes of one job may build the same dataset, tokenizer or token stream at the same
time. Every writer therefore writes under a private temporary name and publishes it with one
`os.replace`/`os.rename`; a reader sees either nothing or a complete file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

STALE_SECONDS = 24 * 3600  # a temporary build older than this belongs to a dead process


def cache_root(cache_dir: str = "") -> Path:
    """`cache_dir`, else `$SCALING_CACHE`, else `~/.cache/scaling` (created if missing)."""
    root = Path(cache_dir or os.environ.get("SCALING_CACHE") or "~/.cache/scaling").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def fingerprint(*parts: object) -> str:
    """A short stable hex digest of `parts` (their reprs), used to name cache entries."""
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:20]


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """`np.save` to `path` atomically (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def temp_dir_beside(final: Path) -> Path:
    """A fresh private directory next to `final`, to be published with `publish_dir`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):  # left by a killed builder
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(stale)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def publish_dir(tmp: Path, final: Path) -> None:
    """Rename `tmp` to `final`; if another process published `final` first, keep theirs."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def build_tfds_dataset(make_builder, data_dir: Path) -> None:
    """Prepare the TFDS builder `make_builder(tmp_dir)` in a private directory beside
    `data_dir`, then publish it there whole (a failure leaves nothing half-built)."""
    import contextlib
    import io

    import tensorflow_datasets as tfds

    tmp = temp_dir_beside(data_dir)
    try:
        builder = make_builder(tmp)
        tfds.disable_progress_bar()
        with contextlib.redirect_stdout(io.StringIO()):  # TFDS says "Downloading": it is not
            builder.download_and_prepare()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish_dir(tmp, data_dir)
