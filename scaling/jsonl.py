"""JSON lines: reading for corpora, results tables and task files; appending result rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator


def jsonl_objects(text: str, where: Callable[[int], str],
                  error: type[Exception]) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of `text`; a line that is not a JSON
    object raises `error` with one line naming it (`where(line number)` says where)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{where(number)}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise error(f"{where(number)}: expected a JSON object per line")
        yield number, obj


def append_rows(path: str, rows: list[dict], error: type[Exception]) -> None:
    """Append one JSON line per row; an OS error raises `error` naming the file (callers
    print the rows first, so nothing computed is lost)."""
    from scaling import storage

    try:
        storage.append_text(path, "".join(json.dumps(row) + "\n" for row in rows))
    except OSError as e:
        raise error(f"cannot append the scores above to {path}: {storage.error_text(e)}") \
            from None
