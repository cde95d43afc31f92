"""Sources: where pretraining documents come from, cut into units that are read in parallel.

A `--data` spec lists its units once, in the launcher (cheap: file names, sizes, parquet
metadata, TFDS split sizes); a worker then reads one unit at a time, in bounded memory, as
(key, text) documents in source order. Units, by kind:

  embedded            one unit a standard-library .py file (one document; key: relative path)
  text:GLOB           one unit a file (one document; key: relative path); a glob matching a
                      single file cuts it by bytes into `SINGLE_FILE_PARTS` line-aligned parts,
                      one document each (key `path#007`), so it has a validation split
  jsonl:GLOB          one unit a file, one document a line (`data.text_field`; key
                      `path:LINE`); `.jsonl.gz` and `.jsonl.zst` are decompressed as a stream
  parquet:GLOB        one unit a row group, one document a row (`data.text_field` column;
                      key `path:ROW`), read a record batch at a time
  tfds:NAME[/CONFIG]  one unit `TFDS_RECORDS_PER_UNIT` records of a split, in stored order

Which split a document of a local source goes to is decided by its key
(`scaling/data/sources/splits.py`); TFDS datasets bring their own splits.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scaling import storage
from scaling.data.sources.files import file_stat, glob_files, open_binary
from scaling.errors import DataError

SINGLE_FILE_PARTS = 100
TFDS_RECORDS_PER_UNIT = 4096
_TFDS_BYTES_PER_RECORD = 2048  # a planning estimate only (shards group units by size)
PRETRAINING_KINDS = ("embedded", "text", "jsonl", "parquet", "tfds")
_READ_BATCH_ROWS = 1024


@dataclass(frozen=True)
class Unit:
    """One piece of a source that one worker reads: a file, part of a file, a parquet row
    group or a range of TFDS records."""

    kind: str  # embedded | text | text-part | jsonl | parquet | tfds
    path: str  # the file (tfds: the dataset name)
    name: str  # relative path, the prefix of document keys (tfds: the split)
    size: int  # bytes (an estimate for tfds): the shard plan groups units by it
    start: int = 0  # text-part: byte offset; parquet: row group; tfds: first record
    stop: int = 0  # text-part: end byte; parquet: rows before this group; tfds: end record
    split: str = ""  # tfds: our split ("train"/"validation"); "" = by key hash
    stamp: str = ""  # what identifies the content: size and mtime (tfds: version)


def list_units(data) -> list[Unit]:
    """The units of `data.spec` (data: a DataConfig), in source order."""
    spec = data.spec
    kind, arg = spec.kind, spec.arg
    if kind not in PRETRAINING_KINDS:
        raise DataError(f"--data {data.source!r}: {kind}: is a parallel (translation) corpus; "
                        f"a token store holds pretraining text: embedded, text:GLOB, "
                        f"jsonl:GLOB, parquet:GLOB or tfds:NAME")
    if kind == "tfds":
        return _tfds_units(data, arg)
    if kind == "embedded":
        from scaling.data.sources.corpora import embedded_files, embedded_root

        files = embedded_files(embedded_root())
    else:
        files = glob_files(data.source, arg)
    if kind == "parquet":
        return [u for path, rel in files for u in _parquet_units(path, rel)]
    if kind == "text" and len(files) == 1:
        path, rel = files[0]
        size = file_stat(path)[0]
        edges = [size * i // SINGLE_FILE_PARTS for i in range(SINGLE_FILE_PARTS + 1)]
        return [Unit("text-part", str(path), f"{rel}#{i:03d}", edges[i + 1] - edges[i],
                     edges[i], edges[i + 1], stamp=file_stat(path)[1])
                for i in range(SINGLE_FILE_PARTS)]
    unit_kind = "embedded" if kind == "embedded" else kind
    return [Unit(unit_kind, str(p), rel, *file_stat(p)[:1], stamp=file_stat(p)[1])
            for p, rel in files]


def fingerprint(units: list[Unit], text_field: str) -> str:
    """sha256 of what the units are (names, sizes, mtimes, ranges) and the text field: a
    source whose files change gets another fingerprint."""
    h = hashlib.sha256()
    h.update(f"{text_field}\0{sys.version_info[:2]}\0".encode())
    for u in units:
        h.update(json.dumps([u.kind, u.name, u.size, u.start, u.stop, u.split, u.stamp])
                 .encode())
    return h.hexdigest()


def read_unit(unit: Unit, text_field: str, tfds_data_dir: str = "") -> Iterator[tuple[str, str]]:
    """(key, text) of each non-empty document of `unit`, in order."""
    if unit.kind in ("embedded", "text"):
        yield unit.name, _utf8(_read_bytes(unit.path), unit.path, 0)
    elif unit.kind == "text-part":
        text = _utf8(_byte_range(unit.path, unit.start, unit.stop), unit.path, unit.start)
        if text.strip():
            yield unit.name, text
    elif unit.kind == "jsonl":
        yield from _jsonl(unit, text_field)
    elif unit.kind == "parquet":
        yield from _parquet_rows(unit, text_field)
    elif unit.kind == "tfds":
        yield from _tfds_records(unit, text_field, tfds_data_dir)
    else:
        raise ValueError(f"unknown unit kind {unit.kind!r}")


def _read_bytes(path: str) -> bytes:
    try:
        with open_binary(path) as f:
            return f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


def _utf8(data: bytes, path: str, offset: int) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {offset + e.start}); "
                        f"convert it to UTF-8 or leave it out of the glob") from None


def _byte_range(path: str, start: int, stop: int) -> bytes:
    """The lines whose first byte lies in [start, stop): a line belongs to the part where
    it begins, so consecutive parts tile the file exactly."""
    try:
        with open_binary(path) as f:
            if start > 0:
                f.seek(start - 1)
                if f.read(1) != b"\n":
                    f.readline()  # the line that began before `start` belongs to the previous part
            begin = f.tell()
            if begin >= stop:
                return b""
            data = f.read(stop - begin)
            if not data.endswith(b"\n"):
                data += f.readline()  # finish the line that begins before `stop`
            return data
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


# ---------------------------------------------------------------------------------------------
# JSON lines, plain or compressed.


def _open_lines(path: str):
    """A binary stream of the decompressed file (by suffix: .gz, .zst)."""
    raw = open_binary(path)
    if path.endswith(".gz"):
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")
    if path.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return raw


def _jsonl(unit: Unit, field: str) -> Iterator[tuple[str, str]]:
    import gzip
    import zlib

    errors: tuple[type[BaseException], ...] = (gzip.BadGzipFile, EOFError, zlib.error)
    try:
        import zstandard

        errors += (zstandard.ZstdError,)
    except ImportError:
        pass
    lineno = 0
    try:
        with _open_lines(unit.path) as f:
            for lineno, line in enumerate(f, start=1):
                text = _json_text(line, field, unit.path, lineno)
                if text:
                    yield f"{unit.name}:{lineno}", text
    except errors as e:
        raise DataError(f"{unit.path}: corrupt or truncated compressed file after line "
                        f"{lineno} ({type(e).__name__}: {str(e)[:80]}); re-download it or "
                        f"leave it out of the glob") from None
    except OSError as e:
        raise DataError(f"{unit.path}: cannot read ({e.strerror or e})") from None


def _json_text(line: bytes, field: str, path: str, lineno: int) -> str:
    if not line.strip():
        return ""
    try:
        record = json.loads(line)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}:{lineno}: not UTF-8 text ({e.reason})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object per line")
    text = record.get(field)
    if not isinstance(text, str):
        raise DataError(f"{path}:{lineno}: no string field {field!r}; set data.text_field to "
                        f"the field that holds the text")
    return text


# ---------------------------------------------------------------------------------------------
# Parquet: one unit a row group.


def _parquet_file(path: str):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(open_binary(path) if storage.is_remote(path) else path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ... for a damaged file
        raise DataError(f"{path}: not a readable parquet file ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:100] if str(e) else ''}); re-download it or "
                        f"leave it out of the glob") from None


def _parquet_units(path: Path, rel: str) -> list[Unit]:
    meta = _parquet_file(str(path)).metadata
    units, rows_before = [], 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        units.append(Unit("parquet", str(path), rel, max(group.total_byte_size, 1), g,
                          rows_before, stamp=file_stat(path)[1]))
        rows_before += group.num_rows
    return units


def _parquet_rows(unit: Unit, field: str) -> Iterator[tuple[str, str]]:
    pf = _parquet_file(unit.path)
    if field not in pf.schema_arrow.names:
        raise DataError(f"{unit.path}: no column {field!r} (columns: "
                        f"{', '.join(pf.schema_arrow.names)}); set data.text_field")
    row = unit.stop  # rows before this group
    try:
        for batch in pf.iter_batches(batch_size=_READ_BATCH_ROWS, row_groups=[unit.start],
                                     columns=[field]):
            for text in batch.column(0).to_pylist():
                if text is not None and not isinstance(text, str):
                    raise DataError(f"{unit.path}: column {field!r} holds "
                                    f"{type(text).__name__}, not text; set data.text_field")
                if text:
                    yield f"{unit.name}:{row}", text
                row += 1
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{unit.path}: row group {unit.start} cannot be read "
                        f"({type(e).__name__}: {str(e)[:100]}); re-download the file") from None


# ---------------------------------------------------------------------------------------------
# TFDS: record ranges of each split.


def _tfds_units(data, name: str) -> list[Unit]:
    from scaling.data.sources.tfds import load_tfds_corpus

    corpus = load_tfds_corpus(data, name)
    units = []
    for split in ("train", "validation"):
        n = len(corpus.splits[split])
        for start in range(0, n, TFDS_RECORDS_PER_UNIT):
            stop = min(n, start + TFDS_RECORDS_PER_UNIT)
            units.append(Unit("tfds", name, split, (stop - start) * _TFDS_BYTES_PER_RECORD,
                              start, stop, split=split, stamp=corpus.key))
    return units


def _tfds_records(unit: Unit, field: str, tfds_data_dir: str) -> Iterator[tuple[str, str]]:
    corpus = _tfds_corpus(unit.path, tfds_data_dir, field)
    records = corpus.splits[unit.split]
    for i in range(unit.start, unit.stop):
        text = corpus.field(records[i], None, f"{unit.split} record {i}")
        if text:
            yield f"{unit.split}:{i}", text


_TFDS_OPEN: dict = {}


def _tfds_corpus(name: str, data_dir: str, field: str):
    """The opened TFDS corpus (one per worker process)."""
    key = (name, data_dir, field)
    if key not in _TFDS_OPEN:
        from types import SimpleNamespace

        from scaling.data.sources.tfds import load_tfds_corpus

        data = SimpleNamespace(text_field=field, tfds_data_dir=data_dir, max_documents=0)
        _TFDS_OPEN[key] = load_tfds_corpus(data, name)
    return _TFDS_OPEN[key]


def describe(units: list[Unit]) -> str:
    """`N files, M MB` for progress lines."""
    files = len({u.path for u in units})
    return f"{files} file(s), {sum(u.size for u in units) / 1e6:,.1f} MB"


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
