"""The copy of its tokenizer a run directory keeps, so that `generate` and `eval` read the
run's own vocabulary even when the corpus or the cache it was built from has changed.

A HuggingFace tokenizer is kept as `<workdir>/tokenizer/` (its files, byte for byte), a
SentencePiece model as `<workdir>/tokenizer.model`; the byte tokenizer needs no copy.
"""

from __future__ import annotations

from scaling import storage
from scaling.data import cache
from scaling.data.tokenizers import HF_PREFIX, Tokenizer, load_tokenizer

HF_DIR, SP_MODEL = "tokenizer", "tokenizer.model"


def keep_copy(tokenizer: Tokenizer, workdir: str) -> None:
    """Write the run's copy of `tokenizer` once (an existing copy is left as it is)."""
    if tokenizer.kind == "hf":
        target = storage.join(workdir, HF_DIR)
        if not storage.path(target).is_dir() and tokenizer.directory != storage.absolute(target):
            tokenizer.save_copy(target)
    elif tokenizer.kind == "sentencepiece":
        target = storage.join(workdir, SP_MODEL)
        if not storage.path(target).is_file():
            storage.write_atomic(target, tokenizer.model_proto)


def kept_spec(workdir: str) -> str | None:
    """The `data.tokenizer` spec of the run's copy, or None when it keeps none."""
    hf = storage.join(storage.absolute(workdir), HF_DIR)
    if storage.path(storage.join(hf, "tokenizer.json")).is_file():
        return HF_PREFIX + hf
    sp = storage.join(storage.absolute(workdir), SP_MODEL)
    return sp if storage.path(sp).is_file() else None


def run_tokenizer(workdir: str, config) -> Tokenizer:
    """The run's kept tokenizer, else the one its data config builds (with its corpus)."""
    spec = kept_spec(workdir)
    if spec is None:
        from scaling.data.api import data_tokenizer

        return data_tokenizer(config)
    return load_tokenizer(spec, config.data.tokenizer_type, config.model.vocab_size, None,
                          cache.cache_root(config.data.cache_dir), config.model.vocab_size)
