"""Packing documents into fixed-length rows for causal LM, with per-document attention.

Legend: D documents, N stream tokens, B rows, T = seq_len, R = T + 1 tokens per row.

Each document becomes `[bos] tokens eos` (no bos if the vocabulary has none); documents are
concatenated into one stream of N tokens. Row r is stream[r*T : r*T + R]: consecutive rows
share one token, so every adjacent pair (stream[i], stream[i+1]) is an (input, target) pair
in exactly one row. Within a row:

  inputs[t]      = row[t],  targets[t] = row[t + 1]
  segment_ids[t] = 1 + (number of document starts in row[1..t]); 1 for the document the row
                   begins in, whether or not it starts there; 0 would mean padding (LM rows
                   have none)
  positions[t]   = t minus the row index where the token's segment starts in this row, so
                   a document continued from the previous row restarts at 0 at the row start
  weights[t]     = 1.0 iff inputs[t] and targets[t] lie in the same document. So bos -> first
                   token ... last token -> eos are trained (the model learns to end a document),
                   and eos -> next document's bos is not (it crosses a boundary).

The model must mask attention so that a query only sees keys with the same segment id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.data import cache
from scaling.data.tokenizer import Tokenizer
from scaling.errors import DataError

_FORMAT = "stream-v1"


@dataclass(frozen=True)
class TokenStream:
    """Documents back to back: `tokens` [N] and the offset of each document start [D]."""

    tokens: np.ndarray  # [N] uint16 or int32 (often a read-only memmap)
    doc_starts: np.ndarray  # [D] int64, ascending, doc_starts[0] == 0

    def num_rows(self, seq_len: int) -> int:
        """Rows of seq_len + 1 tokens (overlapping by one) that fit in the stream."""
        return max(0, (len(self.tokens) - 1) // seq_len)


def encode_documents(texts: Iterable[str], tokenizer: Tokenizer, chunk: int = 256) -> TokenStream:
    """Tokenize `texts` (in order) into one stream, each as [bos] ids eos."""
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.int32
    head = [] if tokenizer.bos_id is None else [tokenizer.bos_id]
    head_arr, tail_arr = np.asarray(head, dtype), np.asarray([tokenizer.eos_id], dtype)
    pieces, lengths, batch = [], [], []

    def flush():
        for ids in tokenizer.encode_batch(batch):
            pieces.extend((head_arr, ids.astype(dtype), tail_arr))
            lengths.append(len(head) + len(ids) + 1)
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) == chunk:
            flush()
    flush()
    tokens = np.concatenate(pieces) if pieces else np.zeros([0], dtype)  # [N]
    doc_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)  # [D]
    return TokenStream(tokens=tokens, doc_starts=doc_starts[: len(lengths)])


def cached_stream(corpus, split: str, tokenizer: Tokenizer, cache_root: Path) -> TokenStream:
    """The token stream of `corpus`'s `split`, tokenized once and kept as .npy in the cache."""
    base = cache_root / "tokens" / f"{corpus.key}-{tokenizer.hash[:16]}-{_FORMAT}"
    tokens_path, starts_path = base / f"{split}.tokens.npy", base / f"{split}.doc_starts.npy"
    if not (tokens_path.is_file() and starts_path.is_file()):
        stream = encode_documents(corpus.texts(split), tokenizer)
        cache.save_npy_atomic(tokens_path, stream.tokens)
        cache.save_npy_atomic(starts_path, stream.doc_starts)
    try:
        tokens, starts = cache.load_npy(tokens_path), cache.load_npy(starts_path, mmap=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(
            f"the token cache {base} is damaged ({type(e).__name__}: {str(e)[:120]}); delete "
            f"that directory and rerun to rebuild it") from None
    if len(starts) and (starts[-1] > len(tokens) or np.any(np.diff(starts) < 0)):
        raise DataError(f"the token cache {base} is inconsistent (document starts past the "
                        f"token count); delete that directory and rerun to rebuild it")
    return TokenStream(tokens=tokens, doc_starts=starts)


def pack_rows(stream: TokenStream, rows: np.ndarray, seq_len: int) -> dict[str, np.ndarray]:
    """The LM batch made of stream rows `rows` [B]; every array is [B, T]."""
    T = seq_len
    start = np.asarray(rows, np.int64) * T  # [B]
    tok = np.stack([stream.tokens[s : s + T + 1] for s in start]).astype(np.int32)  # [B, R]
    idx = start[:, None] + np.arange(T + 1)  # [B, R]
    doc = np.searchsorted(stream.doc_starts, idx, side="right") - 1  # [B, R]
    seg = (doc - doc[:, :1] + 1).astype(np.int32)  # [B, R]
    seg_start = np.maximum(stream.doc_starts[doc], start[:, None])  # [B, R]
    return {
        "inputs": tok[:, :-1],  # [B, T]
        "targets": tok[:, 1:],  # [B, T]
        "segment_ids": seg[:, :-1],  # [B, T]
        "positions": (idx - seg_start)[:, :-1].astype(np.int32),  # [B, T]
        "weights": (seg[:, :-1] == seg[:, 1:]).astype(np.float32),  # [B, T]
    }


def unigram_entropy(stream: TokenStream, vocab_size: int, bos_id: int | None) -> float:
    """Entropy (nats/token) of the unigram distribution of the stream's predicted tokens.

    The predicted (weight-1) targets are every token but bos, so bos is left out: this is the
    loss of the best model that ignores context.
    """
    counts = np.bincount(np.asarray(stream.tokens), minlength=vocab_size).astype(np.float64)
    if bos_id is not None:
        counts[bos_id] = 0.0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
