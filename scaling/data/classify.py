"""Sentence classification batches for BERT fine-tuning (Devlin et al. 2019, §4.1: GLUE).

Legend: L examples in this process's batch, T = seq_len.

One example per row: `[CLS] ids [SEP]`, the ids cut to T - 2, right-padded with pad_id.
`type_ids` are 0 (one sentence), `segment_ids` 1 on real tokens and 0 on padding,
`positions` count from 0, and `labels` [L] are the class ids (data.label_field, >= 0).
"""

from __future__ import annotations

import numpy as np

from scaling.data.loader import BatchData
from scaling.data.seq2seq import pad_rows
from scaling.errors import DataError


def classification_batch(texts_ids: list[np.ndarray], labels: list[int], T: int,
                         tokenizer) -> dict[str, np.ndarray]:
    """The batch of token-id lists (no specials yet) and their labels; arrays [L, T] / [L]."""
    cls, sep = np.array([tokenizer.cls_id], np.int32), np.array([tokenizer.sep_id], np.int32)
    ids, real = pad_rows([np.concatenate([cls, t[: T - 2], sep]) for t in texts_ids], T,
                         tokenizer.pad_id)
    return {
        "inputs": ids,  # [L, T]
        "type_ids": np.zeros_like(ids),  # [L, T]
        "positions": np.where(real, np.arange(T, dtype=np.int32)[None, :], 0),  # [L, T]
        "segment_ids": real.astype(np.int32),  # [L, T]
        "labels": np.asarray(labels, np.int32),  # [L]
    }


class ClassificationData(BatchData):
    """Classification batches over a corpus of (text, label) records; see module doc."""

    def __init__(self, *, corpus, label_field: str, seq_len: int, **kwargs):
        super().__init__(**kwargs)
        tok = self.tokenizer
        if tok.cls_id is None or tok.sep_id is None:
            raise DataError("the tokenizer has no [CLS]/[SEP] pieces; train one or use 'byte'")
        if seq_len < 3:
            raise DataError(f"seq_len={seq_len}: classification rows need at least 3 tokens")
        self._corpus, self.seq_len, self.label_field = corpus, seq_len, label_field
        labels = [int(corpus.field(r, label_field, "train record"))
                  for r in corpus.records("train")]
        if len(labels) < self.global_batch or corpus.num_documents("validation") < 1:
            raise DataError(
                f"{corpus.spec}: {len(labels)} train examples; need at least "
                f"train.global_batch={self.global_batch} and one validation example"
            )
        if min(labels) < 0:
            raise DataError(f"{corpus.spec}: train labels include {min(labels)}; unlabeled data?")
        self.num_classes = max(labels) + 1
        self._setup(len(labels), corpus.num_documents("validation"))

    def make_batch(self, split: str, step: int, items: np.ndarray) -> dict[str, np.ndarray]:
        del step
        source = self._corpus.splits[split]
        records = [source[int(i)] for i in items]
        texts = [self._corpus.field(r, None, f"{split} record") for r in records]
        labels = [int(self._corpus.field(r, self.label_field, split)) for r in records]
        if min(labels) < 0:
            raise DataError(f"{self._corpus.spec} {split}: label {min(labels)} (unlabeled split)")
        return classification_batch(self.tokenizer.encode_batch(texts), labels, self.seq_len,
                                    self.tokenizer)
