"""Data: sources, tokenizers, the token store (built on Apache Beam), packing and grain
loading; docs/data.md describes the stages and the store format.

    data = load_lm_data(config)   # builds (once) the token store it reads, then returns LMData
    data.batch(step)              # this process's rows of global batch `step`

Which loader a run uses is its objective's choice (scaling/families/). The names below are
imported on first use, so `scaling.data.spec` and friends stay cheap to import (no TFDS,
grain or SentencePiece until a pipeline is built).
"""

from __future__ import annotations

_EXPORTS = {
    "load_lm_data": "api", "load_mlm_data": "api", "load_seq2seq_data": "api",
    "open_corpus": "api", "open_store": "api", "data_tokenizer": "api",
    "measure_throughput": "bench", "LMData": "batches.lm", "LMIterator": "batches.loader",
    "MLMData": "batches.mlm", "NSPData": "batches.nsp", "Seq2SeqData": "batches.seq2seq",
    "ByteTokenizer": "tokenizers",
    "SentencePieceTokenizer": "tokenizers", "Tokenizer": "tokenizers",
    "check_tokenizer_hash": "tokenizers", "padded_vocab_size": "tokenizers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'scaling.data' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"scaling.data.{_EXPORTS[name]}"), name)
