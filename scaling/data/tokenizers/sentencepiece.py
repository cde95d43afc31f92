"""SentencePiece: a model loaded from its bytes, and training one on a text sample.

Trained models keep text exactly: identity normalization, no dummy prefix, byte fallback for
any character outside the vocabulary, and "\\n" as a piece of its own (pieces never span a
line end), so `decode(encode(text)) == text` for every UTF-8 string. Special ids are those of
base.py.
"""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
import sentencepiece as spm

from scaling.data.tokenizers.base import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SPECIAL_PIECES,
    UNK_ID,
    Tokenizer,
)
from scaling.errors import DataError

SAMPLE_CHARS = 4_000_000  # SentencePiece trains on a deterministic sample of about this size
TOKENIZER_TYPES = ("bpe", "unigram")  # data.tokenizer_type: SentencePiece model types
_LINES_PER_SENTENCE = 8
_MAX_SENTENCE_BYTES = 16384
_MIN_SP_VOCAB = 320  # 256 byte-fallback pieces + specials + room for merges


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece model given as its serialized bytes."""

    kind = "sentencepiece"
    threads = os.cpu_count() or 1  # encode_batch's threads; a store worker uses one

    def __init__(self, model_proto: bytes, origin: str = "<bytes>"):
        self._proto = model_proto
        self.origin = origin
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        except (RuntimeError, OSError) as e:
            raise DataError(f"tokenizer {origin}: not a SentencePiece model ({e})") from None
        sp = self._sp
        self.vocab_size = sp.get_piece_size()
        self.unk_id = sp.unk_id()
        self.pad_id = sp.pad_id() if sp.pad_id() >= 0 else 0  # only fills weight-0 slots
        self.bos_id = sp.bos_id() if sp.bos_id() >= 0 else None
        if sp.eos_id() < 0:
            raise DataError(f"tokenizer {origin}: the model defines no eos piece; need one")
        self.eos_id = sp.eos_id()
        self.mask_id, self.cls_id, self.sep_id = (self._piece(p) for p in SPECIAL_PIECES[4:])

    def _piece(self, piece: str) -> int | None:
        i = self._sp.piece_to_id(piece)
        return None if i == self.unk_id else i

    @property
    def model_proto(self) -> bytes:
        return self._proto

    @property
    def hash(self) -> str:
        return hashlib.sha256(self._proto).hexdigest()

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        ids = self._sp.encode(list(texts), num_threads=self.threads)
        return [np.asarray(x, np.int32) for x in ids]

    def decode(self, ids: Iterable[int]) -> str:
        # SentencePiece itself drops control pieces (pad, bos, eos, [MASK], ...).
        return self._sp.decode([int(i) for i in ids if 0 <= int(i) < self.vocab_size])


# ---------------------------------------------------------------------------------------------
# Training.


def sample_chunks(text: str) -> Iterable[str]:
    """The pieces of `text` a tokenizer is trained on: `_LINES_PER_SENTENCE` lines each,
    non-blank and at most `_MAX_SENTENCE_BYTES` long."""
    lines = text.split("\n")
    for i in range(0, len(lines), _LINES_PER_SENTENCE):
        chunk = "\n".join(lines[i : i + _LINES_PER_SENTENCE])
        if chunk.strip() and len(chunk.encode("utf-8")) <= _MAX_SENTENCE_BYTES:
            yield chunk


def training_sample(
    texts: Iterable[str], total_chars: int, budget: int = SAMPLE_CHARS
) -> list[str]:
    """Chunks of a few lines, kept by a CRC of their content at rate budget/total_chars.

    Deterministic: the same corpus always gives the same sample, whatever the process.
    (A token store draws its sample by `scaling/data/store/sample.py` instead.)
    """
    keep = min(1.0, budget / max(total_chars, 1))
    threshold = int(keep * 2**32)
    return [chunk for text in texts for chunk in sample_chunks(text)
            if zlib.crc32(chunk.encode("utf-8")) < threshold]


def train_sentencepiece(sentences: list[str], vocab_size: int, model_type: str) -> bytes:
    """A serialized SentencePiece model (BPE or unigram) trained on `sentences`."""
    if vocab_size < _MIN_SP_VOCAB:
        raise DataError(
            f"SentencePiece vocab_size={vocab_size} is too small (byte fallback alone takes "
            f"256 ids); use at least {_MIN_SP_VOCAB} or data.tokenizer=byte"
        )
    if not sentences:
        raise DataError("cannot train SentencePiece: the corpus has no text")
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
            model_type=model_type, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
            control_symbols=list(SPECIAL_PIECES[4:]), user_defined_symbols=["\n"],
            normalization_rule_name="identity", remove_extra_whitespaces=False,
            add_dummy_prefix=False, byte_fallback=True, allow_whitespace_only_pieces=True,
            split_digits=True, character_coverage=1.0, max_sentence_length=_MAX_SENTENCE_BYTES,
            input_sentence_size=0, shuffle_input_sentence=False, hard_vocab_limit=False,
            num_threads=os.cpu_count() or 1, minloglevel=2,
        )
    except RuntimeError as e:
        raise DataError(f"SentencePiece training failed: {e}") from None
    return model.getvalue()
