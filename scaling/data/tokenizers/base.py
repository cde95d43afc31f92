"""What every tokenizer offers (byte.py, sentencepiece.py, hf.py): text <-> ids and the
special ids the pipelines, MLM masking, generation and evaluation use.

Special ids, declared once for every tokenizer this package makes (a loaded .model keeps its
own, looked up by piece; a HuggingFace tokenizer its own, from its files):

  pad=0  unk=1  bos=2  eos=3  mask=4  cls=5  sep=6   (mask/cls/sep are reserved for BERT)
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence

import numpy as np

PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID = range(7)
SPECIAL_PIECES = ("<pad>", "<unk>", "<s>", "</s>", "[MASK]", "[CLS]", "[SEP]")


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
    # Whether the model reading these ids expects bos first (the run's data.bos_prefix, set
    # where a run's tokenizer is loaded for inference: scaling/checkpoint/load.py).
    add_bos: bool = True

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
