"""Local files a corpus is built from: globbing and strict UTF-8 reading."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from scaling.errors import DataError


def glob_files(spec: str, pattern: str) -> list[tuple[Path, str]]:
    paths = sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True))
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise DataError(f"--data {spec!r}: no files match {pattern!r}; check the glob")
    for p in paths:
        if p.stat().st_size == 0:
            raise DataError(f"--data {spec!r}: file {p} is empty; remove it or fix the glob")
    base = Path(os.path.commonpath([p.parent for p in paths]))
    return [(p, p.relative_to(base).as_posix()) for p in paths]


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
