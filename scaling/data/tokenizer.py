"""Tokenizers: SentencePiece (trained on the corpus once and cached, or loaded from a .model),
a byte-level tokenizer, and HuggingFace tokenizer.json files (hf_tokenizer.py).

Special ids, declared once for every tokenizer this package makes (a loaded .model keeps its
own, looked up by piece; a HuggingFace tokenizer its own, from its files):

  pad=0  unk=1  bos=2  eos=3  mask=4  cls=5  sep=6   (mask/cls/sep are reserved for BERT)

Trained models keep text exactly: identity normalization, no dummy prefix, byte fallback for
any character outside the vocabulary, and "\\n" as a piece of its own (pieces never span a
line end), so `decode(encode(text)) == text` for every UTF-8 string.
"""

from __future__ import annotations

import hashlib
import io
import os
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm

from scaling import storage
from scaling.data import cache
from scaling.data.tokenizer_base import Tokenizer
from scaling.errors import DataError

PAD_ID, UNK_ID, BOS_ID, EOS_ID, MASK_ID, CLS_ID, SEP_ID = range(7)
SPECIAL_PIECES = ("<pad>", "<unk>", "<s>", "</s>", "[MASK]", "[CLS]", "[SEP]")
SAMPLE_CHARS = 4_000_000  # SentencePiece trains on a deterministic sample of about this size
_LINES_PER_SENTENCE = 8
_MAX_SENTENCE_BYTES = 16384
_MIN_SP_VOCAB = 320  # 256 byte-fallback pieces + specials + room for merges


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


HF_PREFIX = "hf:"  # data.tokenizer=hf:DIR
TOKENIZER_TYPES = ("bpe", "unigram")  # data.tokenizer_type: SentencePiece model types


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


def load_tokenizer(spec: str, model_type: str, vocab_size: int, corpus, cache_root: Path,
                   model_vocab_size: int, fields: tuple[str, ...] = ()) -> Tokenizer:
    """The tokenizer named by `config.data.tokenizer`, checked against the model's vocabulary.

    spec: "byte", "sentencepiece" (train on the `fields` of `corpus`'s train split once,
    default its text field; cached by corpus, fields, type and size), "hf:DIR" (a
    HuggingFace tokenizer.json, scaling/data/hf_tokenizer.py) or a path to a SentencePiece
    .model file. Only "sentencepiece" reads `corpus`.
    """
    if spec == "byte":
        tok: Tokenizer = ByteTokenizer()
    elif spec == "sentencepiece":
        tok = _trained(corpus, model_type, vocab_size, cache_root, fields)
    elif spec.startswith(HF_PREFIX):
        from scaling.data.hf_tokenizer import HFTokenizer  # lazy: the tokenizers library

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
