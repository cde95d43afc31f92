"""The byte-level tokenizer: UTF-8 bytes after the seven special ids (base.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

from scaling.data.tokenizers.base import (
    BOS_ID,
    CLS_ID,
    EOS_ID,
    MASK_ID,
    PAD_ID,
    SEP_ID,
    SPECIAL_PIECES,
    UNK_ID,
    Tokenizer,
)


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes; byte b has id b + 7, after the seven special ids."""

    kind = "byte"
    _OFFSET = len(SPECIAL_PIECES)

    def __init__(self):
        self.vocab_size = 256 + self._OFFSET
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID
        self.mask_id, self.cls_id, self.sep_id = MASK_ID, CLS_ID, SEP_ID

    @property
    def hash(self) -> str:
        return hashlib.sha256(b"scaling byte tokenizer v1: id = byte + 7").hexdigest()

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [
            np.frombuffer(t.encode("utf-8"), np.uint8).astype(np.int32) + self._OFFSET
            for t in texts
        ]

    def decode(self, ids: Iterable[int]) -> str:
        data = bytes(i - self._OFFSET for i in ids if self._OFFSET <= i < self.vocab_size)
        return data.decode("utf-8", errors="replace")
