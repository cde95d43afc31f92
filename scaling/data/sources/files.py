"""Files a corpus is built from: globbing (local paths, or gs://... and other URIs through
scaling/storage.py), opening, sizes, and strict UTF-8 reading."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from scaling import storage
from scaling.errors import DataError

_GLOB_CHARS = re.compile(r"[*?\[]")


def glob_files(spec: str, pattern: str) -> list[tuple[Path, str]]:
    """(path, name relative to the files' common directory) of every file matching
    `pattern`, sorted; a URI pattern gives `epath.Path`s."""
    if storage.is_remote(pattern):
        return _glob_remote(spec, pattern)
    paths = sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True))
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise DataError(f"--data {spec!r}: no files match {pattern!r}; check the glob")
    for p in paths:
        if p.stat().st_size == 0:
            raise DataError(f"--data {spec!r}: file {p} is empty; remove it or fix the glob")
    base = Path(os.path.commonpath([p.parent for p in paths]))
    return [(p, p.relative_to(base).as_posix()) for p in paths]


def _glob_remote(spec: str, pattern: str) -> list:
    """`gs://bucket/dir/*.jsonl.gz`: the directory before the first glob character, then
    its matches (epath's glob)."""
    head, parts = pattern.split("://", 1)[0] + "://", pattern.split("://", 1)[1].split("/")
    fixed = 0
    while fixed < len(parts) - 1 and not _GLOB_CHARS.search(parts[fixed]):
        fixed += 1
    base = head + "/".join(parts[:fixed])
    rest = "/".join(parts[fixed:])
    try:
        paths = sorted((p for p in storage.path(base).glob(rest) if p.is_file()), key=str)
    except NotImplementedError:  # epath: `**` could mean thousands of listing requests
        raise DataError(f"--data {spec!r}: a recursive `**` glob is not supported on object "
                        f"storage; list each directory's files with `*`") from None
    except (OSError, ValueError) as e:
        raise DataError(f"--data {spec!r}: cannot list {base} ({storage.error_text(e)})") \
            from None
    if not paths:
        raise DataError(f"--data {spec!r}: no files match {pattern!r}; check the glob")
    for p in paths:
        if file_stat(p)[0] == 0:
            raise DataError(f"--data {spec!r}: file {p} is empty; remove it or fix the glob")
    return [(p, str(p)[len(base) + 1:]) for p in paths]


def file_stat(path) -> tuple[int, str]:
    """(size in bytes, a stamp that changes when the file does: size and mtime)."""
    if storage.is_remote(path):
        st = storage.path(path).stat()
        return int(st.length), f"{st.length}:{st.mtime}"
    st = Path(path).stat()
    return st.st_size, f"{st.st_size}:{st.st_mtime_ns}"


def open_binary(path):
    """The file opened for binary reading (a local file, or an object through epath)."""
    if storage.is_remote(path):
        return storage.path(path).open("rb")
    return open(path, "rb")  # noqa: SIM115 (the caller closes it)


def read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); convert it to UTF-8 "
            f"or leave it out of the glob"
        ) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
