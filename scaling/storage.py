"""One path abstraction for run directories and the data cache: `etils.epath` (what orbax and
JAX's compilation cache use), so `--workdir gs://bucket/run` (or s3://, ...) works as a local
directory does.

Local paths keep exactly their old behaviour: made absolute, written to a temporary name and
renamed into place, appended to in place. Object stores differ in three ways, handled here:
  - no append: `append_text` rewrites the object (callers batch their appends);
  - no rename of a file into place: one object upload is already atomic (a reader sees the
    old object or the new one, never half of it), so `write_atomic` writes directly;
  - no kernel lock: see scaling/lock.py.
Everything here imports etils lazily: usage errors must fail before heavy imports.
"""

from __future__ import annotations

import os
import posixpath
import uuid


def is_remote(path) -> bool:
    """A URI such as gs://bucket/run (object storage), as opposed to a local path."""
    return "://" in os.fspath(path)


def absolute(path: str) -> str:
    """A local path made absolute (~ expanded); a URI unchanged."""
    path = os.fspath(path)
    return path if is_remote(path) else os.path.abspath(os.path.expanduser(path))


def join(base, *parts: str) -> str:
    """`base/part/...` as a string, for local paths and URIs alike."""
    base = os.fspath(base)
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def path(p):
    """The `epath.Path` of `p` (absolute when local)."""
    from etils import epath

    return epath.Path(absolute(p))


def error_text(e: BaseException) -> str:
    """The reason of an I/O error in a few words: an OSError's strerror, else its first line."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def read_text(p) -> str:
    return path(p).read_text(encoding="utf-8")


def write_atomic(p, data: str | bytes) -> None:
    """Write `data` to `p` so that a reader sees the old content or the new, never a part:
    locally a temporary file beside it and a rename; on object storage one upload."""
    target = path(p)
    mode, kw = ("wb", {}) if isinstance(data, bytes) else ("w", {"encoding": "utf-8"})
    if is_remote(p):
        with target.open(mode, **kw) as f:
            f.write(data)
        return
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with tmp.open(mode, **kw) as f:
            f.write(data)
        tmp.replace(target)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise


def append_text(p, text: str) -> None:
    """Append `text` to the file `p` (created if missing). Object storage cannot append: the
    object is read and written back whole (an upload is atomic, so it never tears)."""
    target = path(p)
    if not is_remote(p):
        with target.open("a", encoding="utf-8") as f:
            f.write(text)
        return
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    with target.open("w", encoding="utf-8") as f:
        f.write(old + text)


def makedirs(p) -> None:
    """Create directory `p` and its parents (object storage has no directories: a no-op
    there beyond what the backend does)."""
    path(p).mkdir(parents=True, exist_ok=True)


def listdir(p) -> list[str]:
    """Names in directory `p`; [] when it does not exist or cannot be read."""
    try:
        return [child.name for child in path(p).iterdir()]
    except (OSError, ValueError):
        return []


class _ObjectAppender:
    """A text file opened for appending on object storage: writes collect in memory and the
    object is rewritten whole by `flush()` at most every `every` seconds (and always by
    `flush(force=True)` and `close()`), since each rewrite uploads everything so far."""

    def __init__(self, p: str, every: float):
        import time

        self.name, self._clock, self.every = p, time.monotonic, every
        target = path(p)
        self._text = target.read_text(encoding="utf-8") if target.exists() else ""
        self._dirty, self._last = False, self._clock()

    def write(self, text: str) -> int:
        self._text += text
        self._dirty = True
        return len(text)

    def flush(self, force: bool = False) -> None:
        if self._dirty and (force or self._clock() - self._last >= self.every):
            write_atomic(self.name, self._text)
            self._dirty, self._last = False, self._clock()

    def close(self) -> None:
        self.flush(force=True)


def open_append(p, every: float = 30.0):
    """A text file to append lines to: the local file itself, or on object storage a buffer
    uploaded at most every `every` seconds and on `flush(force=True)` / `close()`."""
    if is_remote(p):
        return _ObjectAppender(os.fspath(p), every)
    return open(absolute(p), "a", encoding="utf-8")  # noqa: SIM115 - the caller closes it
