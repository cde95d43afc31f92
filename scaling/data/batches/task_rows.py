"""Task examples as model rows, and the fine-tuning batches (a pure function of seed, step).

BERT (Devlin et al. 2019 §3, Figure 2): `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, type ids
0 for [CLS] A [SEP] and 1 for B [SEP]. Multiple choice (SWAG, §4.4): one row per choice,
`[CLS] text [SEP] choice [SEP]`.

GPT-1 (Radford et al. 2018 §3.3, Figure 1): `start A extract`, `start A delim B extract`;
multiple choice one sequence per choice, `start text delim choice extract`. This vocabulary
has no pieces of those names, so the existing special ids stand in: start = bos (<s>),
delimiter = sep ([SEP]), extract = cls ([CLS]); the head reads the extract token's state.
The auxiliary LM predicts every next token of a row (targets, weights).

Sequences longer than the row are cut, the longer of A and B first (BERT's
`_truncate_seq_pair`), so both keep some of their text.

Legend: L examples in this process's batch, C choices, T row length, S = T / C.
"""

from __future__ import annotations

import numpy as np

from scaling.data.batches.loader import BatchData
from scaling.errors import DataError


def truncate_pair(a: list[int], b: list[int] | None, budget: int) -> tuple[list, list | None]:
    """Cut tokens off the end of the longer of a and b until they fit `budget`."""
    a = list(a)
    b = None if b is None else list(b)
    while len(a) + (len(b) if b is not None else 0) > budget:
        if b is not None and len(b) > len(a):
            b.pop()
        else:
            a.pop()
    return a, b


def bert_row(tok, a: list[int], b: list[int] | None, S: int) -> tuple[list, list]:
    """(ids, type ids) of `[CLS] a [SEP] (b [SEP])`, at most S long."""
    a, b = truncate_pair(a, b, S - (3 if b is not None else 2))
    ids = [tok.cls_id, *a, tok.sep_id]
    types = [0] * len(ids)
    if b is not None:
        ids += [*b, tok.sep_id]
        types += [1] * (len(b) + 1)
    return ids, types


def gpt_row(tok, a: list[int], b: list[int] | None, S: int) -> tuple[list, list]:
    """(ids, type ids = 0) of `start a (delim b) extract`, at most S long."""
    a, b = truncate_pair(a, b, S - (3 if b is not None else 2))
    start = [tok.bos_id] if tok.add_bos else []  # the backbone's convention
    ids = [*start, *a] + ([tok.sep_id, *b] if b is not None else []) + [tok.cls_id]
    return ids, [0] * len(ids)


def check_specials(tok, names: tuple[str, ...]) -> None:
    missing = [n for n in names if getattr(tok, f"{n}_id") is None]
    if missing:
        raise DataError(f"the backbone's tokenizer has no {', '.join(missing)} piece(s), which "
                        f"the task rows need; fine-tune a backbone trained with this "
                        f"package's tokenizers (SentencePiece or byte)")


def rows_of(example_ids: list[tuple], row_fn, tok, T: int, C: int) -> dict[str, np.ndarray]:
    """Arrays [L, T] of the examples' rows; with C choices each takes S = T // C columns."""
    S = T // C if C else T
    L = len(example_ids)
    ids = np.full((L, T), tok.pad_id, np.int32)
    types, pos, seg = (np.zeros((L, T), np.int32) for _ in range(3))
    targets, weights = np.zeros((L, T), np.int32), np.zeros((L, T), np.float32)
    for i, parts in enumerate(example_ids):
        for c, (a, b) in enumerate(parts):  # one (a, b) per choice, or one for the example
            row, ty = row_fn(tok, a, b, S)
            n, o = len(row), c * S
            ids[i, o:o + n], types[i, o:o + n] = row, ty
            pos[i, o:o + n], seg[i, o:o + n] = np.arange(n), 1
            targets[i, o:o + n - 1], weights[i, o:o + n - 1] = row[1:], 1.0
    return {"inputs": ids, "type_ids": types, "positions": pos, "segment_ids": seg,
            "targets": targets, "weights": weights}


class FinetuneData(BatchData):
    """Batches of a Task (scaling/data/sources/task_files.py) for one objective's row format.

    `fields`: the objective's batch field names (the batch holds exactly those); `row_fn`:
    bert_row or gpt_row. Training shuffles each epoch (scaling/data/batches/loader.py); evaluation
    batches and `ordered_batches` read the validation (test) split."""

    def __init__(self, *, task, row_fn, field_names: tuple[str, ...], seq_len: int, **kwargs):
        super().__init__(**kwargs)
        self.task, self.row_fn, self.field_names, self.seq_len = task, row_fn, field_names, seq_len
        C = task.num_choices
        if seq_len // max(C, 1) < 4:
            raise DataError(f"train.seq_len={seq_len}: too short for {max(C, 1)} rows of at "
                            f"least 4 tokens; raise train.seq_len")
        n = len(task.splits["train"])
        if n < self.global_batch:
            raise DataError(f"{task.files['train']}: {n} examples, fewer than "
                            f"train.global_batch={self.global_batch}; lower it")
        self._ids = {s: self._encode(s) for s in task.splits}
        self._setup(n, len(task.splits["validation"]))

    def _encode(self, split: str) -> list[tuple]:
        """Per example: a tuple of (a ids, b ids or None), one per choice (or just one)."""
        tok, examples = self.tokenizer, self.task.splits[split]
        texts = [e.text for e in examples]
        a = self.tokenizer.encode_batch(texts)
        if self.task.num_choices:
            flat = [c for e in examples for c in e.choices]
            enc = tok.encode_batch(flat)
            C = self.task.num_choices
            return [tuple((a[i].tolist(), enc[i * C + c].tolist()) for c in range(C))
                    for i in range(len(examples))]
        b = tok.encode_batch([e.pair for e in examples]) if self.task.has_pair else None
        return [((a[i].tolist(), None if b is None else b[i].tolist()),)
                for i in range(len(examples))]

    def labels(self, split: str, items) -> np.ndarray:
        ex = self.task.splits[split]
        return np.asarray([ex[int(i)].label if ex[int(i)].label is not None else -1.0
                           for i in items], np.float32)

    def rows(self, split: str, items) -> dict[str, np.ndarray]:
        parts = [self._ids[split][int(i)] for i in items]
        arrays = rows_of(parts, self.row_fn, self.tokenizer, self.seq_len,
                         self.task.num_choices)
        arrays["labels"] = self.labels(split, items)
        return {k: arrays[k] for k in self.field_names}

    def make_batch(self, split: str, step: int, items: np.ndarray) -> dict[str, np.ndarray]:
        del step
        return self.rows(split, items)

    def ordered_batches(self, split: str):
        """(this process's rows of each global batch over `split` in file order, the number
        of real rows of the global batch); the last is filled with copies of example 0."""
        n = len(self.task.splits[split])
        B, L, p = self.global_batch, self.local_batch, self.process_index
        for start in range(0, n, B):
            idx = np.arange(start + p * L, start + (p + 1) * L)
            yield self.rows(split, np.where(idx < n, idx, 0)), min(B, n - start)

    def state_tag(self) -> dict:
        return {**super().state_tag(), "seq_len": self.seq_len}
