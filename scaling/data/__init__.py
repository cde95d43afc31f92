"""Data: corpora (TFDS, array_record), SentencePiece tokenizers, packing and grain loading.

    data = load_lm_data(config)   # builds and caches what it needs, then returns LMData
    data.batch(step)              # this process's rows of global batch `step`
"""

from __future__ import annotations

from scaling.data.api import load_lm_data
from scaling.data.loader import LMData, LMIterator
from scaling.data.tokenizer import ByteTokenizer, SentencePieceTokenizer, Tokenizer

__all__ = [
    "ByteTokenizer",
    "LMData",
    "LMIterator",
    "SentencePieceTokenizer",
    "Tokenizer",
    "load_lm_data",
]
