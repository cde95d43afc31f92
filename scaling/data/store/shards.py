"""Building one shard group of a token store: what each worker does.

Legend: N tokens, D documents, S sentences.

A group is a run of consecutive source units (planned from the listing alone, so the shards
do not depend on how many workers build them). Its worker reads the units in order, sends
each document to its split (by key hash, or the source's own split), tokenizes documents in
batches, and writes each split's documents as `[bos] ids eos` back to back, starting a new
part when a split passes `MAX_PART_TOKENS` (memory stays bounded by that, whatever the
corpus size). With the "sentences" layout (BERT's next-sentence pairs) it also writes each
document's non-blank lines, tokenized one by one (scaling/data/batches/sentences.py). The group's
statistics go to `.parts/GGGGG.json`, written after its shard files: a group with that file
is finished, so a rerun after a kill skips it.
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from scaling import storage
from scaling.data.sources import Unit, read_unit
from scaling.data.sources.splits import is_validation, key_digest
from scaling.data.store.layout import PARTS, SPLITS, shard_file, shard_name

MAX_PART_TOKENS = 1 << 27  # 256 MiB of uint16 tokens a part at most
_BATCH_DOCS = 256
_BATCH_CHARS = 8 << 20  # also tokenize once this much text waits (long documents)
_PROGRESS_SECONDS = 2.0


@dataclass(frozen=True)
class Group:
    """Consecutive source units that one worker turns into one shard of each split."""

    index: int
    units: tuple[Unit, ...]


@dataclass(frozen=True)
class Settings:
    """What every worker needs besides its group and the tokenizer."""

    store: str
    text_field: str
    tfds_data_dir: str
    sentences: bool  # also write the sentence layout (NSP)
    dtype: str  # uint16 | int32


def plan_groups(units: list[Unit], shard_bytes: int) -> list[Group]:
    """Consecutive units, each group closed once it holds `shard_bytes` (a unit is never
    split, so a large unit is a group of its own)."""
    groups, current, size = [], [], 0
    for unit in units:
        current.append(unit)
        size += unit.size
        if size >= shard_bytes:
            groups.append(Group(len(groups), tuple(current)))
            current, size = [], 0
    if current:
        groups.append(Group(len(groups), tuple(current)))
    return groups


def save_npy(path: str, array: np.ndarray) -> None:
    """np.save to `path` atomically: a temporary file and a rename locally, one upload on
    object storage."""
    if storage.is_remote(path):
        buffer = io.BytesIO()
        np.save(buffer, array)
        storage.write_atomic(path, buffer.getvalue())
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)


class _SplitWriter:
    """One split's documents of a group, written as parts of at most MAX_PART_TOKENS."""

    def __init__(self, settings: Settings, split: str, group: int):
        self.settings, self.split, self.group = settings, split, group
        self.dtype = np.dtype(settings.dtype)
        self.parts: list[dict] = []
        self._reset()

    def _reset(self):
        self.pieces, self.lengths = [], []  # document tokens and lengths
        self.sent_pieces, self.sent_lengths, self.sents_per_doc = [], [], []
        self.tokens = 0

    def add(self, ids: np.ndarray, sentences: list[np.ndarray] | None) -> None:
        self.pieces.append(ids.astype(self.dtype))
        self.lengths.append(len(ids))
        self.tokens += len(ids)
        if sentences is not None:
            self.sent_pieces.extend(s.astype(self.dtype) for s in sentences)
            self.sent_lengths.extend(len(s) for s in sentences)
            self.sents_per_doc.append(len(sentences))
        if self.tokens >= MAX_PART_TOKENS:
            self.flush()

    def flush(self) -> None:
        if not self.lengths:
            return
        name = shard_name(self.split, self.group, len(self.parts))
        store = self.settings.store
        tokens = np.concatenate(self.pieces)  # [N]
        docs = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)  # [D]
        save_npy(shard_file(store, name, "tokens"), tokens)
        save_npy(shard_file(store, name, "docs"), docs)
        part = {"name": name, "tokens": int(len(tokens)), "documents": len(self.lengths)}
        if self.settings.sentences:
            sent_tokens = (np.concatenate(self.sent_pieces) if self.sent_pieces
                           else np.zeros([0], self.dtype))  # [M]
            starts = np.concatenate([[0], np.cumsum(self.sent_lengths, dtype=np.int64)])
            per_doc = np.concatenate([[0], np.cumsum(self.sents_per_doc, dtype=np.int64)])
            save_npy(shard_file(store, name, "sent_tokens"), sent_tokens)
            save_npy(shard_file(store, name, "sent_starts"), starts.astype(np.int64))  # [S+1]
            save_npy(shard_file(store, name, "sent_docs"), per_doc.astype(np.int64))  # [D+1]
            part.update(sentences=len(self.sent_lengths), sentence_tokens=int(len(sent_tokens)))
        self.parts.append(part)
        self._reset()


def build_group(group: Group, tokenizer_ref, settings: Settings,
                moved: dict[str, str] | None = None) -> dict:
    """Tokenize and write `group`'s shards; returns (and records in .parts/) its statistics.
    `moved`: document keys sent to another split than their hash says (the fallback that
    keeps both splits non-empty)."""
    from scaling.data.batches.sentences import split_sentences

    tokenizer = tokenizer_ref.load(threads=1)
    moved = moved or {}
    head = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
    writers = {split: _SplitWriter(settings, split, group.index) for split in SPLITS}
    stats = {"group": group.index, "documents": 0, "bytes": 0, "local": {},
             "train_min": None, "validation_max": None}
    pending: dict[str, list[str]] = {split: [] for split in SPLITS}
    waiting = dict.fromkeys(SPLITS, 0)  # characters pending per split
    progress = _Progress(settings.store, group.index)

    def encode(split: str) -> None:
        texts = pending[split]
        if not texts:
            return
        for ids, text in zip(tokenizer.encode_batch(texts), texts, strict=True):
            doc = np.concatenate([np.asarray(head, np.int64), ids, [tokenizer.eos_id]])
            sentences = None
            if settings.sentences:
                lines = split_sentences(text)
                sentences = tokenizer.encode_batch(lines) if lines else []
            writers[split].add(doc, sentences)
        texts.clear()
        waiting[split] = 0

    for unit in group.units:
        for key, text in read_unit(unit, settings.text_field, settings.tfds_data_dir):
            split = unit.split or moved.get(key) or (
                "validation" if is_validation(key) else "train")
            if not unit.split:
                _track_extremes(stats, split, key)
            pending[split].append(text)
            stats["documents"] += 1
            stats["bytes"] += len(text.encode("utf-8"))
            waiting[split] += len(text)
            if len(pending[split]) == _BATCH_DOCS or waiting[split] >= _BATCH_CHARS:
                encode(split)
            progress.maybe_write(stats)
    for split in SPLITS:
        encode(split)
        writers[split].flush()
    stats["parts"] = {split: writers[split].parts for split in SPLITS}
    storage.write_atomic(storage.join(settings.store, PARTS, f"{group.index:05d}.json"),
                         json.dumps(stats, sort_keys=True))
    progress.done(stats)
    return stats


def _track_extremes(stats: dict, split: str, key: str) -> None:
    """Keep the train document with the smallest key hash and the validation document with
    the largest (the candidates to move if the other split ends up empty)."""
    digest = key_digest(key).hex()
    if split == "train" and (stats["train_min"] is None or digest < stats["train_min"][0]):
        stats["train_min"] = [digest, key]
    if split == "validation" and (stats["validation_max"] is None
                                  or digest > stats["validation_max"][0]):
        stats["validation_max"] = [digest, key]
    stats["local"][split] = stats["local"].get(split, 0) + 1


class _Progress:
    """A small `.parts/progress/GGGGG.json` rewritten every few seconds, for the launcher's
    progress line (local stores only; on object storage progress is per finished group)."""

    def __init__(self, store: str, group: int):
        self.path = None if storage.is_remote(store) else storage.join(
            store, PARTS, "progress", f"{group:05d}.json")
        self.last = time.monotonic()

    def maybe_write(self, stats: dict) -> None:
        if self.path and time.monotonic() - self.last >= _PROGRESS_SECONDS:
            self.done(stats)
            self.last = time.monotonic()

    def done(self, stats: dict) -> None:
        if self.path:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            storage.write_atomic(self.path, json.dumps(
                {"documents": stats["documents"], "bytes": stats["bytes"]}))
