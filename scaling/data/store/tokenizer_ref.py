"""The store's tokenizer: saved under STORE/tokenizer/, and passed to workers as a small
picklable reference that each worker process loads once."""

from __future__ import annotations

import json
from dataclasses import dataclass

from scaling import storage
from scaling.data.store.layout import TOKENIZER
from scaling.errors import DataError

SP_FILE, BYTE_FILE = "spm.model", "byte.json"


@dataclass(frozen=True)
class TokenizerRef:
    """What a worker needs to rebuild the tokenizer: its kind and its bytes or directory."""

    kind: str  # byte | sentencepiece | hf
    model: bytes = b""  # sentencepiece: the serialized model
    directory: str = ""  # hf: the directory holding tokenizer.json

    def load(self, threads: int | None = None):
        key = (self.kind, self.model, self.directory, threads)
        if key not in _LOADED:
            _LOADED.clear()  # one tokenizer per worker at a time
            _LOADED[key] = _build(self, threads)
        return _LOADED[key]


_LOADED: dict = {}


def _build(ref: TokenizerRef, threads: int | None):
    from scaling.data.tokenizers import ByteTokenizer, SentencePieceTokenizer

    if ref.kind == "byte":
        return ByteTokenizer()
    if ref.kind == "sentencepiece":
        tok = SentencePieceTokenizer(ref.model)
        if threads:
            tok.threads = threads
        return tok
    from scaling.data.tokenizers.hf import HFTokenizer

    return HFTokenizer(ref.directory)


def ref_of(tokenizer) -> TokenizerRef:
    if tokenizer.kind == "sentencepiece":
        return TokenizerRef("sentencepiece", model=tokenizer.model_proto)
    if tokenizer.kind == "hf":
        return TokenizerRef("hf", directory=tokenizer.directory)
    return TokenizerRef("byte")


def save(store: str, tokenizer) -> None:
    """Write `tokenizer` into STORE/tokenizer/ (each file atomically)."""
    directory = storage.join(store, TOKENIZER)
    storage.makedirs(directory)
    if tokenizer.kind == "sentencepiece":
        storage.write_atomic(storage.join(directory, SP_FILE), tokenizer.model_proto)
    elif tokenizer.kind == "hf":
        tokenizer.save_copy(directory)
    else:
        storage.write_atomic(storage.join(directory, BYTE_FILE),
                             json.dumps({"kind": "byte", "hash": tokenizer.hash}) + "\n")


def saved(store: str):
    """The tokenizer under STORE/tokenizer/, or None when there is none yet."""
    directory = storage.join(store, TOKENIZER)
    sp = storage.path(storage.join(directory, SP_FILE))
    if sp.is_file():
        from scaling.data.tokenizers import SentencePieceTokenizer

        return SentencePieceTokenizer(sp.read_bytes(), origin=str(sp))
    if storage.path(storage.join(directory, "tokenizer.json")).is_file():
        from scaling.data.tokenizers.hf import HFTokenizer

        return HFTokenizer(directory)
    if storage.path(storage.join(directory, BYTE_FILE)).is_file():
        from scaling.data.tokenizers import ByteTokenizer

        return ByteTokenizer()
    return None


def load(store: str, manifest: dict):
    """The store's tokenizer, checked against the hash its manifest records."""
    tokenizer = saved(store)
    want = manifest.get("tokenizer", {}).get("hash")
    if tokenizer is None or tokenizer.hash != want:
        raise DataError(f"{store}: its tokenizer/ is missing or does not match the manifest's "
                        f"hash; the store is damaged: delete it and prepare it again")
    return tokenizer
