"""Parallel corpora for translation: (source, target) records written once as an array_record
TFDS dataset with train / validation / test splits.

  cldr:SRC-TGT   generated from Babel's CLDR data and num2words
                 (scaling/data/sources/translation.py)
  tsv:GLOB       UTF-8 files, one `source TAB target` pair a line; fields data.input_field /
                 data.target_field, default `source` / `target`
  jsonl:GLOB     one JSON object a line, with data.input_field and data.target_field set

Local files are split by a hash of the source sentence (1.6% validation, 1.6% test, at least
one pair each), so one sentence never lands in two splits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tensorflow_datasets as tfds

from scaling.data import cache
from scaling.data.sources.corpus import Corpus
from scaling.data.sources.files import read_utf8
from scaling.errors import DataError

SPLITS = ("train", "validation", "test")
_FORMAT = "parallel-v1"
CLDR_EXAMPLES = 150_000  # drawn before de-duplication by source


class ParallelCorpus(tfds.core.GeneratorBasedBuilder):
    """Sentence pairs as a TFDS dataset: features `id` and the two field names given."""

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, fields=("source", "target"), pairs=None, **kwargs):
        self._fields, self._pairs = tuple(fields), pairs  # pairs: split -> [(src, tgt)]
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        text = tfds.features.Text()
        features = {"id": text, **{f: text for f in self._fields}}
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(features))

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is local
        return {split: self._generate_examples(split) for split in SPLITS}

    def _generate_examples(self, split: str):
        for i, (src, tgt) in enumerate(self._pairs[split]):
            key = f"{split}-{i:07d}"
            yield key, {"id": key, self._fields[0]: src, self._fields[1]: tgt}


def seq2seq_defaults(spec, input_field: str, target_field: str) -> tuple[str, str]:
    """The (input, target) fields of a parallel spec: cldr:en-de -> (en, de); tsv -> source,
    target; set fields override."""
    if spec.kind == "cldr":
        from scaling.data.sources.translation import parse_pair

        src, tgt = parse_pair(spec.arg)
        return input_field or src, target_field or tgt
    return input_field or "source", target_field or "target"


def load_parallel_corpus(data, kind: str, arg: str, cache_root: Path, fields, files=()):
    """Build (once) and open the parallel corpus of `data.source` with record `fields`."""
    if kind == "cldr":
        from scaling.data.sources.translation import generate_pairs, parse_pair

        src, tgt = parse_pair(arg)
        stats = [("cldr", src, tgt, data.seed, CLDR_EXAMPLES, _package_versions())]

        def pairs():
            return generate_pairs(src, tgt, data.seed, CLDR_EXAMPLES)
    else:
        stats = [(rel, p.stat().st_size, p.stat().st_mtime_ns) for p, rel in files]

        def pairs():
            return split_pairs(list(_file_pairs(kind, files, fields, read_utf8)))

    key = f"{kind}-" + cache.fingerprint(_FORMAT, kind, arg, fields, stats, sys.version_info)
    data_dir = cache_root / "tfds" / key
    if not (data_dir / ParallelCorpus.name).is_dir():
        _build(pairs(), fields, data_dir)
    # read back from the files (their features name the fields), not by the registered name
    built = tfds.builder_from_directory(str(data_dir / ParallelCorpus.name /
                                            str(ParallelCorpus.VERSION)))
    splits = {split: built.as_data_source(split=split) for split in SPLITS}
    if data.max_documents:
        key += f"-max{data.max_documents}"
    return Corpus(spec=data.source, key=key, splits=splits, text_field=fields[0],
                  limit=data.max_documents)


def _package_versions() -> tuple[str, ...]:
    from importlib.metadata import version

    return tuple(version(p) for p in ("babel", "num2words"))


def _file_pairs(kind: str, files, fields, read_utf8):
    """(source, target) of every line of every file, in file order."""
    import json

    for path, _ in files:
        for lineno, line in enumerate(read_utf8(path).splitlines(), 1):
            if not line.strip():
                continue
            if kind == "tsv":
                parts = line.split("\t")
                if len(parts) != 2:
                    raise DataError(f"{path}:{lineno}: expected `source TAB target`, found "
                                    f"{len(parts)} tab-separated fields")
                yield parts[0].strip(), parts[1].strip()
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(record, dict) or not all(
                    isinstance(record.get(f), str) for f in fields):
                raise DataError(f"{path}:{lineno}: needs string fields {fields[0]!r} and "
                                f"{fields[1]!r} (data.input_field / data.target_field)")
            yield record[fields[0]], record[fields[1]]


def split_pairs(pairs: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """Pairs split by a hash of the source; each split gets at least one pair."""
    from scaling.data.sources.translation import split_of

    if len(pairs) < 3:
        raise DataError(f"parallel corpus has {len(pairs)} sentence pair(s); need at least 3 "
                        f"to form train, validation and test splits")
    out = {s: [] for s in SPLITS}
    for pair in pairs:
        out[split_of(pair[0])].append(pair)
    for split in ("validation", "test"):  # tiny corpora: move one pair from train
        if not out[split] and len(out["train"]) > 1:
            out[split].append(out["train"].pop())
    return out


def _build(pairs, fields, data_dir: Path) -> None:
    cache.build_tfds_dataset(
        lambda tmp: ParallelCorpus(fields=fields, pairs=pairs, data_dir=str(tmp),
                                   file_format="array_record"), data_dir)
