"""Packed causal-LM batches (scaling/data/batches/packing.py) over a token stream per split."""

from __future__ import annotations

import functools

import numpy as np

from scaling.data.batches.loader import BatchData
from scaling.data.batches.packing import pack_rows, unigram_entropy
from scaling.data.tokenizers import Tokenizer
from scaling.errors import DataError


class LMData(BatchData):
    """Packed causal-LM batches of one corpus and tokenizer; see scaling/data/batches/packing.py.
    `train`/`validation`: token streams (a store's splits, or in-memory TokenStreams)."""

    def __init__(self, *, tokenizer: Tokenizer, train, validation,
                 seq_len: int, global_batch: int, eval_batches: int, seed: int,
                 process_index: int, process_count: int, dataset_key: str):
        super().__init__(tokenizer=tokenizer, global_batch=global_batch,
                         eval_batches=eval_batches, seed=seed, process_index=process_index,
                         process_count=process_count, dataset_key=dataset_key)
        for split, stream, need in (("train", train, global_batch), ("validation", validation, 1)):
            rows = stream.num_rows(seq_len)
            if rows < need:
                raise DataError(
                    f"the {split} split of {dataset_key} has {stream.num_tokens} tokens = "
                    f"{rows} rows of seq_len={seq_len}, fewer than {need} (one batch); use a "
                    f"larger corpus or lower train.global_batch / train.seq_len"
                )
        self.seq_len = seq_len
        self._train, self._validation = train, validation
        self.train_rows = train.num_rows(seq_len)
        self.train_tokens = int(train.num_tokens)
        self._setup(self.train_rows, validation.num_rows(seq_len))

    def make_batch(self, split: str, step: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """The packed rows `items` [L] of `split` in global batch `step`."""
        first = step * self.global_batch + self.process_index * self.local_batch
        return self.rows(split, items, first + np.arange(len(items)))

    def rows(self, split: str, items: np.ndarray, sample_ids: np.ndarray) -> dict[str, np.ndarray]:
        """The packed rows `items` [n] of `split`; `sample_ids` [n] are their global sample
        indices, which seed any per-row randomness (MLM masking) so that a row does not
        depend on the process count. An LM row depends on its row id only."""
        del sample_ids
        return pack_rows(self.stream(split), items, self.seq_len)

    def stream(self, split: str):
        return self._train if split == "train" else self._validation

    @functools.cached_property
    def unigram_entropy(self) -> float:
        """Nats/token of the validation targets' unigram distribution (a context-free model)."""
        return unigram_entropy(self._validation, self.tokenizer.vocab_size, self.tokenizer.bos_id)

    def state_tag(self) -> dict:
        return {**super().state_tag(), "seq_len": self.seq_len}
