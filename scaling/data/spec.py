"""The `--data` spec (`config.data.source`) parsed into a typed value, once, before any
device or dataset work starts (config validation reads `config.data.spec`).

    embedded            the running Python's standard library (scaling/data/corpora.py)
    text:GLOB           UTF-8 text files, one document a file
    jsonl:GLOB          one JSON object a line, `data.text_field` holds the text
    tfds:NAME[/CONFIG]  a named TFDS dataset (scaling/data/tfds_source.py)
    tsv:GLOB            parallel text, one `source TAB target` a line (scaling/data/parallel.py)
    cldr:SRC-TGT        a generated parallel corpus from CLDR data (scaling/data/translation.py)
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling.errors import DataError

KINDS = ("embedded", "text", "jsonl", "tfds", "tsv", "cldr")


@dataclass(frozen=True)
class DataSpec:
    """One data source: its kind and the argument after the colon ("" for embedded)."""

    kind: str
    arg: str = ""

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
    if source == "embedded":
        return DataSpec("embedded")
    kind, sep, arg = source.partition(":")
    if sep and kind in KINDS and kind != "embedded" and arg:
        return DataSpec(kind, arg)
    raise DataError(
        f"--data {source!r}: unknown data source; use embedded, text:GLOB, jsonl:GLOB, "
        f"tsv:GLOB, cldr:SRC-TGT or tfds:NAME[/CONFIG]"
    )
