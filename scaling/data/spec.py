"""The `--data` spec (`config.data.source`) parsed into a typed value, once, before any
device or dataset work starts (config validation reads `config.data.spec`).

    embedded            the running Python's standard library (scaling/data/sources/corpora.py)
    text:GLOB           UTF-8 text files, one document a file
    jsonl:GLOB          one JSON object a line, `data.text_field` holds the text (also
                        .jsonl.gz and .jsonl.zst)
    parquet:GLOB        parquet files, `data.text_field` the text column (FineWeb, Dolma, ...)
    store:STORE         a token store built by `scaling prepare` (a local path or gs://...)
    tfds:NAME[/CONFIG]  a named TFDS dataset (scaling/data/sources/tfds.py)
    tsv:GLOB            parallel text, one `source TAB target` a line
                        (scaling/data/sources/parallel.py)
    cldr:SRC-TGT        a generated parallel corpus from CLDR data
                        (scaling/data/sources/translation.py)
    mix:W*SPEC,...      a weighted mixture of the specs above (scaling/data/mixture.py);
                        weights are normalized, a bare SPEC weighs 1: mix:0.7*embedded,0.3*text:a/*
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from scaling.errors import DataError

KINDS = ("embedded", "text", "jsonl", "tfds", "tsv", "cldr", "parquet", "store")
PATH_KINDS = ("text", "jsonl", "tsv", "parquet", "store")  # the argument is a path or glob


@dataclass(frozen=True)
class DataSpec:
    """One data source: its kind and the argument after the colon ("" for embedded)."""

    kind: str
    arg: str = ""
    parts: tuple[tuple[float, DataSpec], ...] = ()  # mix: (normalized weight, source) each

    @property
    def names(self) -> tuple[str, ...]:
        """mix: one short name per part, for logged keys (`eval_loss/<name>`): its kind,
        numbered (text1, text2) when a kind repeats."""
        kinds = [p.kind for _, p in self.parts]
        return tuple(k if kinds.count(k) == 1 else f"{k}{kinds[:i + 1].count(k)}"
                     for i, k in enumerate(kinds))

    def __str__(self) -> str:
        return self.kind if not self.arg else f"{self.kind}:{self.arg}"

    @property
    def tfds_config(self) -> str:
        """The config part of tfds:NAME/CONFIG ("" when none or not a TFDS spec)."""
        if self.kind != "tfds" or "/" not in self.arg:
            return ""
        return self.arg.rsplit("/", 1)[-1]


def parse_spec(source: str) -> DataSpec:
    """The DataSpec of `source`; an unknown kind or a missing argument raises DataError."""
    if source.startswith("mix:"):
        return _parse_mix(source)
    if source == "embedded":
        return DataSpec("embedded")
    kind, sep, arg = source.partition(":")
    if sep and kind in KINDS and kind != "embedded" and arg:
        return DataSpec(kind, arg)
    raise DataError(
        f"--data {source!r}: unknown data source; use embedded, text:GLOB, jsonl:GLOB, "
        f"parquet:GLOB, store:STORE, tsv:GLOB, cldr:SRC-TGT, tfds:NAME[/CONFIG] or "
        f"mix:W*SPEC,W*SPEC"
    )


def absolute_source(source: str, absolute: Callable[[str], str]) -> str:
    """`source` with every path in it passed through `absolute` (mix: parts included, their
    weights written as given), so that config.json means the same from any directory.
    Validates `source` first (DataError when it is not a spec)."""
    spec = parse_spec(source)
    if spec.kind != "mix":
        return f"{spec.kind}:{absolute(spec.arg)}" if spec.kind in PATH_KINDS else source
    items = []
    for item in source[len("mix:"):].split(","):
        item = item.strip()
        weight, part = _weighted(source, item)
        prefix = item[: len(item) - len(part)]  # "0.7*", or "" for a bare spec
        items.append(prefix + absolute_source(part, absolute))
    return "mix:" + ",".join(items)


def _parse_mix(source: str) -> DataSpec:
    """mix:W*SPEC,... -> DataSpec("mix", parts=((w, spec), ...)) with weights summing to 1."""
    raw = []
    for item in source[len("mix:"):].split(","):
        weight, spec = _weighted(source, item.strip())
        if spec.startswith("mix:"):
            raise DataError(f"--data {source!r}: a mixture cannot contain a mixture; list "
                            f"its sources in one mix:")
        if spec == "embedded" or spec.partition(":")[0] in KINDS[1:]:
            raw.append((weight, parse_spec(spec)))
            continue
        raise DataError(f"--data {source!r}: mixture item {item.strip()!r} is not a data "
                        f"source; each item is W*SPEC with SPEC one of embedded, text:GLOB, "
                        f"jsonl:GLOB, parquet:GLOB, store:STORE, tsv:GLOB, cldr:SRC-TGT, "
                        f"tfds:NAME[/CONFIG]")
    total = sum(w for w, _ in raw)
    return DataSpec("mix", source[len("mix:"):], tuple((w / total, s) for w, s in raw))


def _weighted(source: str, item: str) -> tuple[float, str]:
    """(weight, spec) of one mixture item `W*SPEC` or `SPEC` (weight 1). A `*` inside a glob
    (text:dir/*.txt) is not a weight: only a number before the first `*` is."""
    head, star, rest = item.partition("*")
    weight = 1.0
    if star:
        try:
            weight, item = float(head), rest
        except ValueError:
            pass
    if not item or not math.isfinite(weight) or weight <= 0:
        raise DataError(
            f"--data {source!r}: bad mixture item {item!r} (weight {weight}); write "
            f"mix:W*SPEC,W*SPEC with positive weights, e.g. mix:0.7*embedded,0.3*text:a/*.txt"
        )
    return weight, item
