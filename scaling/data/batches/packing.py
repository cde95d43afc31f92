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

import numpy as np

from scaling.data.tokenizers import Tokenizer


@dataclass(frozen=True)
class TokenStream:
    """Documents back to back in memory: `tokens` [N] and the offset of each document start
    [D]. A token store's split (scaling/data/store/reader.py::StoreSplit) offers the same
    `num_tokens`, `num_rows`, `read` and `locate`, reading its shards on demand."""

    tokens: np.ndarray  # [N] uint16 or int32
    doc_starts: np.ndarray  # [D] int64, ascending, doc_starts[0] == 0

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    def num_rows(self, seq_len: int) -> int:
        """Rows of seq_len + 1 tokens (overlapping by one) that fit in the stream."""
        return max(0, (len(self.tokens) - 1) // seq_len)

    def read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.tokens[start:stop])

    def locate(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(document number, the document's first token) of each position in `idx`."""
        doc = np.searchsorted(self.doc_starts, idx, side="right") - 1
        return doc, self.doc_starts[doc]

    def token_counts(self, vocab_size: int) -> np.ndarray:
        return np.bincount(np.asarray(self.tokens), minlength=vocab_size)[:vocab_size]


def encode_documents(texts: Iterable[str], tokenizer: Tokenizer, chunk: int = 256) -> TokenStream:
    """Tokenize `texts` (in order) into one stream, each as [bos] ids eos (what a token
    store's workers write, scaling/data/store/shards.py)."""
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


def pack_rows(stream: TokenStream, rows: np.ndarray, seq_len: int) -> dict[str, np.ndarray]:
    """The LM batch made of stream rows `rows` [B] (`stream`: a TokenStream or a store's
    split); every array is [B, T]."""
    T = seq_len
    start = np.asarray(rows, np.int64) * T  # [B]
    tok = np.stack([stream.read(s, s + T + 1) for s in start]).astype(np.int32)  # [B, R]
    idx = start[:, None] + np.arange(T + 1)  # [B, R]
    doc, doc_start = stream.locate(idx)  # [B, R] each
    seg = (doc - doc[:, :1] + 1).astype(np.int32)  # [B, R]
    seg_start = np.maximum(doc_start, start[:, None])  # [B, R]
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
    counts = stream.token_counts(vocab_size).astype(np.float64)  # [V]
    if bos_id is not None:
        counts[bos_id] = 0.0
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())
