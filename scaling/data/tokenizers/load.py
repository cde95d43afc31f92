"""The tokenizer a `data.tokenizer` setting names, and the checks the trainer makes with it."""

from __future__ import annotations

from pathlib import Path

from scaling import storage
from scaling.data import cache
from scaling.data.tokenizers.base import Tokenizer
from scaling.data.tokenizers.byte import ByteTokenizer
from scaling.data.tokenizers.sentencepiece import (
    SentencePieceTokenizer,
    train_sentencepiece,
    training_sample,
)
from scaling.errors import DataError

HF_PREFIX = "hf:"  # data.tokenizer=hf:DIR


def load_tokenizer(spec: str, model_type: str, vocab_size: int, corpus, cache_root: Path,
                   model_vocab_size: int, fields: tuple[str, ...] = ()) -> Tokenizer:
    """The tokenizer named by `config.data.tokenizer`, checked against the model's vocabulary.

    spec: "byte", "sentencepiece" (train on the `fields` of `corpus`'s train split once,
    default its text field; cached by corpus, fields, type and size), "hf:DIR" (a
    HuggingFace tokenizer.json, scaling/data/tokenizers/hf.py) or a path to a SentencePiece
    .model file. Only "sentencepiece" reads `corpus`.
    """
    if spec == "byte":
        tok: Tokenizer = ByteTokenizer()
    elif spec == "sentencepiece":
        tok = _trained(corpus, model_type, vocab_size, cache_root, fields)
    elif spec.startswith(HF_PREFIX):
        from scaling.data.tokenizers.hf import HFTokenizer  # lazy: the tokenizers library

        tok = HFTokenizer(spec[len(HF_PREFIX):])
    else:
        path = storage.path(spec)  # a local file or a URI
        if not path.is_file():
            raise DataError(
                f"data.tokenizer={spec!r}: no such .model file; give an existing SentencePiece "
                f"model path, or 'sentencepiece' to train one, or 'byte'"
            )
        tok = SentencePieceTokenizer(path.read_bytes(), origin=str(path))
    if tok.vocab_size > model_vocab_size:
        raise DataError(
            f"tokenizer vocab_size={tok.vocab_size} exceeds model.vocab_size={model_vocab_size}; "
            f"raise model.vocab_size or lower data.vocab_size"
        )
    return tok


def _trained(corpus, model_type: str, vocab_size: int, cache_root: Path,
             fields: tuple[str, ...]) -> Tokenizer:
    name = "-".join([corpus.key, *fields, model_type, str(vocab_size)])
    path = cache_root / "tokenizers" / f"{name}.model"
    if not path.is_file():

        def texts():  # a shared vocabulary: every field of every train record
            for field in fields or (None,):
                yield from corpus.texts("train", field)

        total = sum(len(t) for t in texts())
        sentences = training_sample(texts(), total)
        cache.write_bytes_atomic(path, train_sentencepiece(sentences, vocab_size, model_type))
    return SentencePieceTokenizer(path.read_bytes(), origin=str(path))


# ---------------------------------------------------------------------------------------------
# Checks the trainer makes against a tokenizer.


def padded_vocab_size(n: int, multiple: int = 128) -> int:
    """`n` rounded up to a multiple of `multiple`: embedding tables of that size tile evenly
    on accelerators (the extra rows are never a target)."""
    if n <= 0 or multiple <= 0:
        raise DataError(f"padded_vocab_size({n}, {multiple}): both must be positive")
    return -(-n // multiple) * multiple


def check_tokenizer_hash(expected: str, tokenizer: Tokenizer) -> None:
    """Raise DataError unless `tokenizer.hash` is `expected` (e.g. from checkpoint metadata)."""
    if expected != tokenizer.hash:
        raise DataError(
            f"tokenizer hash {tokenizer.hash[:16]}... differs from the checkpoint's "
            f"{expected[:16]}...; token ids would mean other words. Use the run's tokenizer "
            f"(data.tokenizer=path/to/its.model) or start a new run"
        )
