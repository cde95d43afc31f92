"""A built corpus: random-access records per split (what every pipeline reads)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from scaling.errors import DataError


@dataclass(frozen=True)
class Corpus:
    """A built corpus: one random-access source of records (dicts) per split."""

    spec: str  # the --data spec it came from
    key: str  # fingerprint; names every cache entry derived from this corpus
    splits: dict[str, Sequence]  # "train"/"validation" -> tfds data source
    text_field: str = "text"
    limit: int = 0  # read at most this many records per split; 0 = all

    def records(self, split: str) -> Iterator[dict]:
        """The records of `split` in the dataset's stored (deterministic) order."""
        source = self.splits[split]
        n = len(source) if not self.limit else min(self.limit, len(source))
        for i in range(n):
            yield source[i]

    def texts(self, split: str, field: str | None = None) -> Iterator[str]:
        """The `field` (default: the text field) of each record of `split`, as str."""
        for i, record in enumerate(self.records(split)):
            yield self.field(record, field, f"{split} record {i}")

    def field(self, record: dict, field: str | None, where: str):
        """`record[field]` (default: the text field); text comes back as str."""
        field = field or self.text_field
        if field not in record:
            raise DataError(
                f"{self.spec}: records have no field {field!r} (fields: "
                f"{', '.join(sorted(record))}); set data.text_field or the pipeline's field"
            )
        value = record[field]
        if isinstance(value, bytes | str):
            return _as_text(value, f"{self.spec} {where} field {field!r}")
        return value

    def num_documents(self, split: str) -> int:
        n = len(self.splits[split])
        return min(n, self.limit) if self.limit else n


def _as_text(value, where: str) -> str:
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{where}: not UTF-8 text ({e.reason} at byte {e.start})") from None
