"""Tokenizers: text <-> ids. base.py (the interface and the special ids), byte.py,
sentencepiece.py (loaded or trained), hf.py (HuggingFace tokenizer.json), load.py (what a
`data.tokenizer` setting names; checks), run_copy.py (the copy a run directory keeps)."""

from scaling.data.tokenizers.base import SPECIAL_PIECES, Tokenizer
from scaling.data.tokenizers.byte import ByteTokenizer
from scaling.data.tokenizers.load import (
    HF_PREFIX,
    check_tokenizer_hash,
    load_tokenizer,
    padded_vocab_size,
)
from scaling.data.tokenizers.sentencepiece import (
    SAMPLE_CHARS,
    TOKENIZER_TYPES,
    SentencePieceTokenizer,
    sample_chunks,
    train_sentencepiece,
    training_sample,
)

__all__ = ["HF_PREFIX", "SAMPLE_CHARS", "SPECIAL_PIECES", "TOKENIZER_TYPES", "ByteTokenizer",
           "SentencePieceTokenizer", "Tokenizer", "check_tokenizer_hash", "load_tokenizer",
           "padded_vocab_size", "sample_chunks", "train_sentencepiece", "training_sample"]
