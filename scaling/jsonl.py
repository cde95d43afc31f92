"""JSON-lines reading shared by corpora, results tables and task files."""

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
