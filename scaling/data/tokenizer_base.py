"""What every tokenizer offers (scaling/data/tokenizer.py, hf_tokenizer.py): text <-> ids and
the special ids the pipelines, MLM masking, generation and evaluation use."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence

import numpy as np


class Tokenizer(abc.ABC):
    """Text <-> token ids. `hash` identifies the exact vocabulary (for run metadata)."""

    kind: str
    vocab_size: int
    pad_id: int
    unk_id: int
    bos_id: int | None  # None: this vocabulary has no bos; documents start without one
    eos_id: int
    mask_id: int | None  # None where the vocabulary has no [MASK]/[CLS]/[SEP]
    cls_id: int | None
    sep_id: int | None

    @property
    @abc.abstractmethod
    def hash(self) -> str:
        """sha256 (hex) of what defines the vocabulary."""

    @abc.abstractmethod
    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text, int32 arrays, no bos/eos added."""

    @abc.abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; special ids are dropped."""

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no bos/eos added)."""
        return self.encode_batch([text])[0].tolist()
