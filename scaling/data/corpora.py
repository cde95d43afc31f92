"""Corpora: where documents come from, each written once as an array_record TFDS dataset.

A `--data` spec (`config.data.source`) names a corpus:

  embedded      the .py source of the running Python's standard library (no network);
                site-packages, __pycache__ and the test directories (test, tests, idle_test)
                are left out, and so are empty files. One file = one document.
  text:GLOB     UTF-8 text files; one file = one document. A glob that matches a single file
                has that file cut at line boundaries into `SINGLE_FILE_PARTS` documents, so
                that whole documents can go to the validation split.
  jsonl:GLOB    one JSON object per line; `config.data.text_field` holds the document.
  tfds:NAME[/CONFIG]   a named TFDS dataset (see scaling/data/tfds_source.py).

Local corpora are split into train/validation BY DOCUMENT: a document goes to validation when
sha256 of its key (relative path, `path#part`, or `path:line`) falls in the first
`VALIDATION_PER_MILLE`/1000 of the hash range; at least one document goes to each split. The
built dataset lives in `<cache>/tfds/<kind>-<fingerprint>/` and is read back with
`tfds.data_source`; the fingerprint covers the file list with sizes and mtimes, so editing a
file builds a new dataset.
"""

from __future__ import annotations

import hashlib
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import tensorflow_datasets as tfds

from scaling.data import cache
from scaling.data.corpus import Corpus
from scaling.data.files import glob_files, read_utf8
from scaling.data.splits import VALIDATION_PER_MILLE, is_validation
from scaling.errors import DataError
from scaling.jsonl import jsonl_objects

SPLITS = ("train", "validation")
SINGLE_FILE_PARTS = 100
EXCLUDED_DIRS = frozenset({"site-packages", "__pycache__", "test", "tests", "idle_test"})
_FORMAT = "corpus-v1"  # bump to invalidate every built local corpus


def load_corpus(data, cache_root: Path, parallel: bool = False) -> Corpus:
    """Build (once) and open the corpus of `data.source` (data: a scaling.config.DataConfig).
    `parallel`: the caller reads (source, target) records (jsonl files then keep
    data.input_field and data.target_field; cldr: and tsv: are always parallel)."""
    kind, arg = data.spec.kind, data.spec.arg
    if data.max_documents < 0:
        raise DataError(f"data.max_documents={data.max_documents}: must be >= 0 (0 = all)")
    if kind == "tfds":
        from scaling.data.tfds_source import load_tfds_corpus

        return load_tfds_corpus(data, arg)
    if kind in ("cldr", "tsv") or (kind == "jsonl" and parallel):
        from scaling.data.parallel import load_parallel_corpus, seq2seq_defaults

        fields = seq2seq_defaults(data.spec, data.input_field, data.target_field)
        files = glob_files(data.source, arg) if kind != "cldr" else ()
        return load_parallel_corpus(data, kind, arg, cache_root, fields, files)
    if kind == "embedded":
        files = embedded_files(embedded_root())
        documents = _text_documents(files)
    else:
        files = glob_files(data.source, arg)
        if kind == "text":
            documents = _text_documents(files)
        else:
            documents = _jsonl_documents(files, data.text_field)
    field = data.text_field if kind == "jsonl" else ""
    stats = [(rel, p.stat().st_size, p.stat().st_mtime_ns) for p, rel in files]
    key = f"{kind}-" + cache.fingerprint(_FORMAT, kind, arg, field, stats, sys.version_info)
    data_dir = cache_root / "tfds" / key
    if not (data_dir / LocalCorpus.name).is_dir():
        _build(documents, data_dir)
    splits = {
        split: tfds.data_source(LocalCorpus.name, split=split, data_dir=data_dir, download=False)
        for split in SPLITS
    }
    if data.max_documents:
        key += f"-max{data.max_documents}"
    return Corpus(spec=data.source, key=key, splits=splits, limit=data.max_documents)


# ---------------------------------------------------------------------------------------------
# Listing files and reading documents.


def embedded_root() -> Path:
    """The running Python's standard library directory (tests monkeypatch this)."""
    return Path(sysconfig.get_paths()["stdlib"])


def embedded_files(root: Path) -> list[tuple[Path, str]]:
    """(path, relative path) of every non-empty stdlib .py file, in sorted order."""
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in EXCLUDED_DIRS and not d.startswith("config-")
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.endswith(".py") and path.is_file() and path.stat().st_size > 0:
                files.append((path, path.relative_to(root).as_posix()))
    if not files:
        raise DataError(f"embedded corpus: no .py files under {root}; use --data text:GLOB")
    return files


def _text_documents(files: list[tuple[Path, str]]) -> Callable[[], Iterator[tuple[str, str]]]:
    def documents():
        if len(files) == 1:
            path, rel = files[0]
            for i, part in enumerate(split_lines(read_utf8(path), SINGLE_FILE_PARTS)):
                yield f"{rel}#{i:03d}", part
            return
        for path, rel in files:
            yield rel, read_utf8(path)

    return documents


def split_lines(text: str, parts: int) -> list[str]:
    """`text` cut at line ends into at most `parts` non-empty pieces of about equal size."""
    lines = text.splitlines(keepends=True)
    pieces, current, target = [], [], len(text) / parts
    size = 0
    for line in lines:
        current.append(line)
        size += len(line)
        if size >= target * (len(pieces) + 1) and len(pieces) < parts - 1:
            pieces.append("".join(current))
            current = []
    if current:
        pieces.append("".join(current))
    return [p for p in pieces if p]


def _jsonl_documents(
    files: list[tuple[Path, str]], field: str
) -> Callable[[], Iterator[tuple[str, str]]]:
    def documents():
        for path, rel in files:
            records = jsonl_objects(read_utf8(path), lambda n, p=path: f"{p}:{n}", DataError)
            for lineno, record in records:
                text = record.get(field)
                if not isinstance(text, str):
                    raise DataError(
                        f"{path}:{lineno}: no string field {field!r}; set data.text_field to "
                        f"the field that holds the text"
                    )
                if text:
                    yield f"{rel}:{lineno}", text

    return documents


# ---------------------------------------------------------------------------------------------
# The split and the TFDS builder.


def assign_splits(keys: list[str]) -> frozenset[str]:
    """The validation keys: `is_validation`, moved so that each split gets >= 1 document."""
    if len(keys) < 2:
        raise DataError(
            f"corpus has {len(keys)} non-empty document(s); need at least 2 to form train and "
            f"validation splits"
        )
    validation = {k for k in keys if is_validation(k)}
    ranked = sorted(keys, key=lambda k: hashlib.sha256(k.encode("utf-8")).digest())
    if not validation:
        validation = {ranked[0]}
    if len(validation) == len(keys):
        validation.discard(ranked[-1])
    return frozenset(validation)


class LocalCorpus(tfds.core.GeneratorBasedBuilder):
    """Documents from local files as a TFDS dataset: features `id` (the key) and `text`."""

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, documents=None, validation_keys=frozenset(), **kwargs):
        self._documents = documents  # None when only reading an already built dataset
        self._validation_keys = validation_keys
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        features = tfds.features.FeaturesDict({"id": text, "text": text})
        return tfds.core.DatasetInfo(builder=self, features=features)

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local
        return {split: self._generate_examples(split == "validation") for split in SPLITS}

    def _generate_examples(self, validation: bool):
        for key, text in self._documents():
            if (key in self._validation_keys) == validation:
                yield key, {"id": key, "text": text}


def _build(documents: Callable[[], Iterator[tuple[str, str]]], data_dir: Path) -> None:
    keys = [key for key, _ in documents()]
    if len(set(keys)) != len(keys):
        raise DataError(f"corpus has duplicate document keys, e.g. {_first_duplicate(keys)!r}")
    validation_keys = assign_splits(keys)
    cache.build_tfds_dataset(
        lambda tmp: LocalCorpus(documents=documents, validation_keys=validation_keys,
                                data_dir=str(tmp), file_format="array_record"), data_dir)


def _first_duplicate(keys: list[str]) -> str:
    seen = set()
    for k in keys:
        if k in seen:
            return k
        seen.add(k)
    return ""
