"""Documents as sentences, tokenized once: what next-sentence prediction pairs are cut from.

Legend: D documents, S sentences, N tokens, C runs.

The sentence rule: a sentence is one line of a document that holds anything but whitespace,
taken as written with its line end (indentation and the "\\n" kept, so a pair reads as the
text did); blank lines are skipped. Our corpora are source files and plain text with one
statement or sentence a line, so lines are the natural unit (BERT's create_pretraining_data
reads one sentence a line, documents separated by blank lines; here a document is a corpus
record). Each sentence is tokenized on its own, without bos/eos.

A `SentenceStream` holds one split: every sentence's tokens back to back, where each sentence
starts, and each document's first sentence. `chunk_documents` then cuts every document into
the runs of consecutive sentences that pair examples are made from (scaling/data/batches/nsp.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from scaling.data.tokenizers import Tokenizer


def split_sentences(text: str) -> list[str]:
    """The sentences of a document: its non-blank lines, as written, each ending in "\\n"."""
    return [line + "\n" for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class SentenceStream:
    """One split's sentences: `tokens` [N], `sentence_starts` [S + 1] (the last entry is N)
    and `doc_starts` [D + 1] (index of each document's first sentence; the last is S)."""

    tokens: np.ndarray  # [N] uint16 or int32
    sentence_starts: np.ndarray  # [S + 1] int64, ascending
    doc_starts: np.ndarray  # [D + 1] int64, ascending

    @property
    def num_documents(self) -> int:
        return len(self.doc_starts) - 1

    def lengths(self) -> np.ndarray:
        """Tokens in each sentence [S]."""
        return np.diff(self.sentence_starts)

    def span(self, first: int, end: int) -> np.ndarray:
        """Tokens of sentences [first, end) back to back, int32."""
        lo, hi = self.sentence_starts[first], self.sentence_starts[end]
        return np.asarray(self.tokens[lo:hi], np.int32)


def encode_sentences(texts: Iterable[str], tokenizer: Tokenizer,
                     chunk: int = 4096) -> SentenceStream:
    """Split each document of `texts` into sentences (module doc) and tokenize them."""
    dtype = np.uint16 if tokenizer.vocab_size <= 2**16 else np.int32
    pieces, lengths, per_doc = [], [], []

    def sentences() -> Iterator[str]:
        for text in texts:
            lines = split_sentences(text)
            per_doc.append(len(lines))
            yield from lines

    batch: list[str] = []
    for line in sentences():
        batch.append(line)
        if len(batch) == chunk:
            _encode(batch, tokenizer, dtype, pieces, lengths)
    _encode(batch, tokenizer, dtype, pieces, lengths)
    tokens = np.concatenate(pieces) if pieces else np.zeros([0], dtype)  # [N]
    sentence_starts = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])  # [S + 1]
    doc_starts = np.concatenate([[0], np.cumsum(per_doc, dtype=np.int64)])  # [D + 1]
    return SentenceStream(tokens, sentence_starts.astype(np.int64), doc_starts.astype(np.int64))


def _encode(batch: list[str], tokenizer: Tokenizer, dtype, pieces: list, lengths: list):
    for ids in tokenizer.encode_batch(batch):
        pieces.append(ids.astype(dtype))
        lengths.append(len(ids))
    batch.clear()


def chunk_documents(stream: SentenceStream, max_tokens: int) -> np.ndarray:
    """Runs of consecutive sentences, each inside one document: [C, 3] rows (document, first
    sentence, end sentence).

    As create_pretraining_data gathers `current_chunk`: sentences are added until the run
    holds at least `max_tokens` tokens; here a run also needs two sentences (an A and a true
    next B), so a document with one sentence gives none and a lone last sentence joins the
    run before it. Runs are fixed; which part is A, and whether B is the true continuation,
    is drawn per example (scaling/data/batches/nsp.py).
    """
    lengths = stream.lengths()  # [S]
    rows: list[list[int]] = []
    for d in range(stream.num_documents):
        first, end = int(stream.doc_starts[d]), int(stream.doc_starts[d + 1])
        start, total, own = first, 0, len(rows)
        for s in range(first, end):
            total += int(lengths[s])
            if total >= max_tokens and s + 1 - start >= 2:
                rows.append([d, start, s + 1])
                start, total = s + 1, 0
        if end - start >= 2:
            rows.append([d, start, end])
        elif end > start and len(rows) > own:  # one sentence left: extend the last run
            rows[-1][2] = end
    return np.asarray(rows, np.int64).reshape(-1, 3)  # [C, 3]
