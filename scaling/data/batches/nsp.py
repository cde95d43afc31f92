"""Sentence pairs with next-sentence labels for BERT pretraining (Devlin et al. 2019 §3.1,
"Task #2: Next Sentence Prediction"), built as Google's create_pretraining_data.py builds
them, but drawn per example so that a batch is a pure function of (data seed, split, global
row index): resume is exact and batches do not depend on the process count.

Legend: L rows in this process's batch, T = seq_len, M = T - 3 (tokens of A and B together).

Documents are split into sentences (one non-blank line each: scaling/data/batches/sentences.py) and
cut into runs of at least two consecutive sentences holding about M tokens
(`chunk_documents`). The runs of a split are its items: grain shuffles them each epoch, and
example k (k = step * global_batch + row) takes its run and draws, with a generator seeded by
(data seed, split, k):

1. the target length: M, or with probability SHORT_SEQ_PROB = 10% uniform in [2, M] (BERT's
   short sequences); the run is cut to its fewest leading sentences (at least two) that hold
   that many tokens, n sentences;
2. A = the first a sentences, a uniform in [1, n - 1];
3. with probability 1/2 IsNext (label 0): B = the other n - a sentences, the true
   continuation; otherwise NotNext (label 1): a document drawn uniformly from the split's
   other documents, a start sentence uniform in it, and sentences from there until B holds
   target - len(A) tokens or the document ends. Partners come from the same split only, so a
   NotNext B never crosses train/validation;
4. truncation to M tokens (truncate_seq_pair): the longer of A and B (B on a tie) loses one
   token at a time, from its front or its back with probability 1/2 each.

Unlike create_pretraining_data, the label is a fair coin whatever the run (there a run of one
sentence always gets a random B, skewing labels), and the sentences of a run that a random B
leaves unused are not put back (each epoch draws every run afresh instead).

A row is `[CLS] A [SEP] B [SEP]` then padding: type_ids 0 on `[CLS] A [SEP]`, 1 on `B [SEP]`
and 0 on padding; segment_ids 1 on real tokens, 0 on padding (the attention mask); positions
0, 1, ... on real tokens and 0 on padding. The ordinary tokens are then masked as in
scaling/data/batches/mlm.py (15%; 80% [MASK], 10% random, 10% kept); [CLS], [SEP] and padding never.
"""

from __future__ import annotations

import numpy as np

from scaling.data.batches.loader import BatchData, derive_seed
from scaling.data.batches.mlm import mask_tokens, masking_ids
from scaling.data.batches.sentences import SentenceStream, chunk_documents
from scaling.errors import DataError

SHORT_SEQ_PROB = 0.1  # create_pretraining_data's --short_seq_prob
IS_NEXT, NOT_NEXT = 0, 1  # nsp_labels, as BERT's next_sentence_labels and HF's


def truncated_lengths(len_a: int, len_b: int, budget: int) -> tuple[int, int]:
    """Lengths of A and B after truncate_seq_pair: the longer loses a token (B on a tie)
    until len_a + len_b <= budget. Closed form of that loop."""
    if len_a + len_b <= budget:
        return len_a, len_b
    if 2 * min(len_a, len_b) <= budget:  # only the longer is cut
        return (budget - len_b, len_b) if len_a > len_b else (len_a, budget - len_a)
    return (budget + 1) // 2, budget // 2  # both cut to halves; a tie cuts B first


def cut(ids: np.ndarray, keep: int, rng: np.random.Generator) -> np.ndarray:
    """`keep` tokens of `ids`: each dropped token from the front or the back with
    probability 1/2, so the number dropped from the front is Binomial(dropped, 1/2)."""
    drop = len(ids) - keep
    front = int(rng.binomial(drop, 0.5)) if drop > 0 else 0
    return ids[front : front + keep]


def pair_row(a: np.ndarray, b: np.ndarray, T: int, tokenizer) -> dict[str, np.ndarray]:
    """`[CLS] a [SEP] b [SEP]` padded to T; arrays [T] (module doc)."""
    ids = np.concatenate([[tokenizer.cls_id], a, [tokenizer.sep_id], b, [tokenizer.sep_id]])
    n = len(ids)
    if n > T:
        raise ValueError(f"a pair of {n} tokens does not fit seq_len={T}")
    row = {k: np.zeros(T, np.int32) for k in ("inputs", "type_ids", "positions", "segment_ids")}
    row["inputs"][:] = tokenizer.pad_id
    row["inputs"][:n] = ids
    row["type_ids"][len(a) + 2 : n] = 1  # B and its [SEP]
    row["positions"][:n] = np.arange(n)
    row["segment_ids"][:n] = 1
    return row


def _sentences_holding(stream: SentenceStream, first: int, end: int, tokens: int) -> int:
    """How many sentences from `first` (at most end - first) it takes to hold `tokens`."""
    held = stream.sentence_starts[first + 1 : end + 1] - stream.sentence_starts[first]  # [.]
    return int(min(end - first, 1 + np.searchsorted(held, tokens)))


def draw_pair(stream: SentenceStream, run: np.ndarray, partners: np.ndarray, budget: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """(A, B, label) from `run` = (document, first sentence, end sentence); `partners` are
    the split's documents with a sentence (steps 1-4 of the module doc)."""
    doc, first, end = (int(x) for x in run)
    target = budget
    if rng.random() < SHORT_SEQ_PROB:
        target = int(rng.integers(2, budget + 1))
    n = max(2, _sentences_holding(stream, first, end, target))
    a_end = first + int(rng.integers(1, n))
    a = stream.span(first, a_end)
    if rng.random() < 0.5:
        b, label = stream.span(a_end, first + n), IS_NEXT
    else:
        b, label = random_segment(stream, partners, doc, max(target - len(a), 1), rng), NOT_NEXT
    len_a, len_b = truncated_lengths(len(a), len(b), budget)
    return cut(a, len_a, rng), cut(b, len_b, rng), label


def random_segment(stream: SentenceStream, partners: np.ndarray, doc: int, tokens: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Sentences of a document drawn uniformly from `partners` other than `doc`, from a
    uniform start sentence until they hold `tokens` tokens or the document ends."""
    k = int(rng.integers(len(partners) - 1))
    k += k >= int(np.searchsorted(partners, doc))  # skip `doc` itself
    other = int(partners[k])
    lo, hi = int(stream.doc_starts[other]), int(stream.doc_starts[other + 1])
    start = int(rng.integers(lo, hi))
    return stream.span(start, start + _sentences_holding(stream, start, hi, tokens))


class NSPData(BatchData):
    """Masked sentence-pair batches: `inputs`, `targets`, `weights`, `type_ids`,
    `positions`, `segment_ids` [L, T] and `nsp_labels` [L] (0 IsNext, 1 NotNext)."""

    def __init__(self, *, tokenizer, train: SentenceStream, validation: SentenceStream,
                 seq_len: int, **kwargs):
        self._special, self._ordinary = masking_ids(tokenizer)
        if tokenizer.cls_id is None or tokenizer.sep_id is None:
            raise DataError("the tokenizer has no [CLS]/[SEP] pieces, so it cannot build "
                            "sentence pairs; train one or use data.tokenizer=byte")
        if seq_len < 5:
            raise DataError(f"train.seq_len={seq_len}: a sentence pair needs at least 5 "
                            f"positions ([CLS] A [SEP] B [SEP]); raise it")
        super().__init__(tokenizer=tokenizer, **kwargs)
        self.seq_len, self._streams = seq_len, {"train": train, "validation": validation}
        self._runs, self._partners = {}, {}
        for split, stream in self._streams.items():
            self._runs[split] = chunk_documents(stream, seq_len - 3)  # [C, 3]
            self._partners[split] = np.flatnonzero(np.diff(stream.doc_starts) > 0)  # [D']
            need = self.global_batch if split == "train" else 1
            if len(self._runs[split]) < need or len(self._partners[split]) < 2:
                raise DataError(
                    f"the {split} split of {self.dataset_key} has {len(self._runs[split])} "
                    f"runs of two or more sentences (need {need}) in "
                    f"{len(self._partners[split])} non-empty documents (need 2) for "
                    f"next-sentence pairs; use a larger corpus with several lines a document, "
                    f"or data.nsp=false")
        self._setup(len(self._runs["train"]), len(self._runs["validation"]))

    def make_batch(self, split: str, step: int, items: np.ndarray) -> dict[str, np.ndarray]:
        seed = derive_seed(self.seed, f"nsp-{split}")
        first = step * self.global_batch + self.process_index * self.local_batch
        stream, runs, partners = self._streams[split], self._runs[split], self._partners[split]
        rows, labels = [], []
        for j, item in enumerate(items):
            rng = np.random.default_rng([seed, first + j])
            a, b, label = draw_pair(stream, runs[int(item)], partners, self.seq_len - 3, rng)
            row = pair_row(a, b, self.seq_len, self.tokenizer)
            row["targets"] = row["inputs"]
            row["inputs"], row["weights"] = mask_tokens(
                row["targets"], rng, self.tokenizer.mask_id, self._ordinary, self._special)
            rows.append(row)
            labels.append(label)
        batch = {k: np.stack([r[k] for r in rows]) for k in rows[0]}  # each [L, T]
        batch["nsp_labels"] = np.asarray(labels, np.int32)  # [L]
        return batch

    def state_tag(self) -> dict:
        return {**super().state_tag(), "seq_len": self.seq_len, "pairs": "nsp"}
