"""HuggingFace tokenizers (`data.tokenizer=hf:DIR`): a `tokenizer.json` read with the
`tokenizers` library (GPT-2's byte-level BPE, BERT's WordPiece, ...).

The special ids come from the tokenizer's own files, not from our fixed 0-6: the roles
bos, eos, unk, pad, mask, cls, sep are read from `special_tokens_map.json` or
`tokenizer_config.json` (HF's spellings: "bos_token", ...), else from well-known token
strings in the vocabulary (`<|endoftext|>`, `[CLS]`, ...). A vocabulary without eos uses
sep (BERT); without bos, cls; without pad, eos (pads only fill weight-0 slots).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

import numpy as np

from scaling import storage
from scaling.data.tokenizers.base import Tokenizer
from scaling.errors import DataError

ROLES = ("bos", "eos", "unk", "pad", "mask", "cls", "sep")
WELL_KNOWN = {"bos": ("<|endoftext|>", "<s>"), "eos": ("<|endoftext|>", "</s>"),
              "unk": ("[UNK]", "<unk>", "<|endoftext|>"), "pad": ("[PAD]", "<pad>"),
              "mask": ("[MASK]", "<mask>"), "cls": ("[CLS]",), "sep": ("[SEP]",)}
FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
         "merges.txt", "vocab.txt", "added_tokens.json")  # what a copy of the tokenizer keeps


def has_hf_tokenizer(directory: str) -> bool:
    return storage.path(storage.join(directory, "tokenizer.json")).is_file()


def _token_text(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def special_tokens(directory: str) -> dict[str, str]:
    """role -> token text, from the directory's tokenizer_config.json, overridden by its
    special_tokens_map.json (the files `transformers` writes)."""
    out: dict[str, str] = {}
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = storage.join(directory, name)
        if not storage.path(path).is_file():
            continue
        try:
            table = json.loads(storage.read_text(path))
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: cannot read it ({e})") from None
        for role in ROLES:
            text = _token_text(table.get(f"{role}_token")) if isinstance(table, dict) else None
            if text:
                out[role] = text
    return out


class HFTokenizer(Tokenizer):
    """A HuggingFace `tokenizer.json` with its special tokens."""

    kind = "hf"

    def __init__(self, directory: str):
        from tokenizers import Tokenizer as Backend  # lazy: only runs that use one load it

        self.directory = storage.absolute(directory)  # a local path or a URI
        path = storage.join(self.directory, "tokenizer.json")
        if not storage.path(path).is_file():
            raise DataError(f"data.tokenizer=hf:{directory}: no tokenizer.json there; give a "
                            f"directory holding a HuggingFace tokenizer.json")
        try:
            self._json = storage.path(path).read_bytes()
            self._tok = Backend.from_str(self._json.decode("utf-8"))
        except Exception as e:  # noqa: BLE001 - the library raises plain Exceptions
            raise DataError(f"{path}: not a HuggingFace tokenizer ({e})") from None
        self._tok.no_padding()
        self._tok.no_truncation()
        self.vocab_size = self._tok.get_vocab_size(with_added_tokens=True)
        self.specials = self._roles(special_tokens(self.directory))
        ids = {role: self._tok.token_to_id(text) for role, text in self.specials.items()}
        self.mask_id, self.cls_id, self.sep_id = ids.get("mask"), ids.get("cls"), ids.get("sep")
        self.bos_id = ids.get("bos", self.cls_id)
        eos = ids.get("eos", self.sep_id)
        if eos is None:
            raise DataError(f"{path}: the tokenizer names no eos (or sep) token; one is needed "
                            f"to end documents")
        self.eos_id = eos
        self.pad_id = ids.get("pad", eos)
        self.unk_id = ids.get("unk", self.pad_id)

    def _roles(self, named: dict[str, str]) -> dict[str, str]:
        """Named roles whose token exists, plus well-known tokens for the others."""
        out = {r: t for r, t in named.items() if self._tok.token_to_id(t) is not None}
        for role in ROLES:
            if role not in out:
                found = [t for t in WELL_KNOWN[role] if self._tok.token_to_id(t) is not None]
                if found:
                    out[role] = found[0]
        return out

    def adds_bos(self) -> bool:
        """Whether this tokenizer, encoding with its special tokens as `transformers` does by
        default, puts its bos (BERT: [CLS]) first (GPT-2's puts nothing)."""
        if self.bos_id is None:
            return False
        ids = self._tok.encode("a", add_special_tokens=True).ids
        bare = self._tok.encode("a", add_special_tokens=False).ids
        return len(ids) > len(bare) and ids[0] == self.bos_id

    @property
    def hash(self) -> str:
        h = hashlib.sha256(self._json)
        h.update(json.dumps(self.specials, sort_keys=True).encode("utf-8"))
        return h.hexdigest()

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        out = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, np.int32) for e in out]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def save_copy(self, directory: str) -> None:
        """Copy the tokenizer's files into `directory` (created; a local path or a URI),
        byte for byte."""
        storage.makedirs(directory)
        for name in FILES:
            src = storage.path(storage.join(self.directory, name))
            if src.is_file():
                storage.write_atomic(storage.join(directory, name), src.read_bytes())
