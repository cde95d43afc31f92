"""Corpora read record by record: named TFDS datasets and parallel (translation) corpora,
the sources of objectives that tokenize on the fly (seq2seq). Pretraining text goes through
a token store instead (scaling/data/sources.py lists it, scaling/data/store/ builds it).

  tfds:NAME[/CONFIG]   a named TFDS dataset (see scaling/data/sources/tfds.py)
  tsv:GLOB, cldr:SRC-TGT, jsonl:GLOB with input/target fields: parallel corpora
                       (scaling/data/sources/parallel.py)

Also here: the listing of the embedded corpus (the .py source of the running Python's
standard library; site-packages, __pycache__ and the test directories are left out, and so
are empty files), which scaling/data/sources.py reads.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

from scaling.data.sources.corpus import Corpus
from scaling.data.sources.files import glob_files
from scaling.errors import DataError

EXCLUDED_DIRS = frozenset({"site-packages", "__pycache__", "test", "tests", "idle_test"})


def load_corpus(data, cache_root: Path, parallel: bool = False) -> Corpus:
    """Build (once) and open the corpus of `data.source` (data: a scaling.config.DataConfig).
    `parallel`: the caller reads (source, target) records (jsonl files then keep
    data.input_field and data.target_field; cldr: and tsv: are always parallel)."""
    kind, arg = data.spec.kind, data.spec.arg
    if data.max_documents < 0:
        raise DataError(f"data.max_documents={data.max_documents}: must be >= 0 (0 = all)")
    if kind == "tfds":
        from scaling.data.sources.tfds import load_tfds_corpus

        return load_tfds_corpus(data, arg)
    if kind in ("cldr", "tsv") or (kind == "jsonl" and parallel):
        from scaling.data.sources.parallel import load_parallel_corpus, seq2seq_defaults

        fields = seq2seq_defaults(data.spec, data.input_field, data.target_field)
        files = glob_files(data.source, arg) if kind != "cldr" else ()
        return load_parallel_corpus(data, kind, arg, cache_root, fields, files)
    raise DataError(f"--data {data.source!r}: {kind} is pretraining text, read through a token "
                    f"store (causal_lm, masked_lm); this objective needs a parallel corpus "
                    f"(tsv:, cldr:, jsonl: with data.input_field/target_field) or tfds:")


# ---------------------------------------------------------------------------------------------
# The embedded corpus.


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
