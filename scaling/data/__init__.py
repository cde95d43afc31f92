"""Data: corpora (TFDS, array_record), SentencePiece tokenizers, packing and grain loading.

    data = load_lm_data(config)   # builds and caches what it needs, then returns LMData
    data.batch(step)              # this process's rows of global batch `step`
"""

from __future__ import annotations

from scaling.data.api import (
    load_classification_data,
    load_data,
    load_lm_data,
    load_mlm_data,
    load_seq2seq_data,
)
from scaling.data.bench import measure_throughput
from scaling.data.classify import ClassificationData
from scaling.data.loader import LMData, LMIterator
from scaling.data.mlm import MLMData
from scaling.data.seq2seq import Seq2SeqData
from scaling.data.tokenizer import (
    ByteTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    check_tokenizer_hash,
    padded_vocab_size,
)

__all__ = [
    "ByteTokenizer",
    "ClassificationData",
    "LMData",
    "LMIterator",
    "MLMData",
    "SentencePieceTokenizer",
    "Seq2SeqData",
    "Tokenizer",
    "check_tokenizer_hash",
    "load_classification_data",
    "load_data",
    "load_lm_data",
    "load_mlm_data",
    "load_seq2seq_data",
    "measure_throughput",
    "padded_vocab_size",
]
