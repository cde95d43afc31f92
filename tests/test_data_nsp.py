"""Next-sentence prediction pairs (BERT §3.1): the row encoding against a hand-built example,
the label balance and split isolation by a hand count, truncation against the literal
truncate_seq_pair loop, determinism, and a short bert-tiny-shaped NSP run's logged metrics."""

import dataclasses
import hashlib
import itertools
import json
import math

import numpy as np
import pytest

from scaling.cli import main
from scaling.config import ConfigError
from scaling.data import NSPData
from scaling.data.batches.nsp import pair_row, truncated_lengths
from scaling.data.batches.sentences import chunk_documents, encode_sentences, split_sentences
from scaling.data.tokenizers import Tokenizer
from scaling.errors import DataError
from scaling.presets import get_preset
from scaling.validate import validate


class LineTokenizer(Tokenizer):
    """A tiny tokenizer for tests: each known line (with its "\\n") is one token, so every
    token of a pair names its split, document and line; ids 0-6 are the usual specials."""

    kind = "lines"

    def __init__(self, lines: list[str]):
        self._ids = {line: 7 + i for i, line in enumerate(lines)}
        self._lines = dict(zip(self._ids.values(), lines, strict=True))
        self.vocab_size = 7 + len(lines)
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = 0, 1, 2, 3
        self.mask_id, self.cls_id, self.sep_id = 4, 5, 6

    @property
    def hash(self) -> str:
        return hashlib.sha256(repr(sorted(self._ids)).encode()).hexdigest()

    def encode_batch(self, texts):
        return [np.array([self._ids[t]], np.int32) for t in texts]

    def decode(self, ids):
        return "".join(self._lines.get(int(i), "") for i in ids)

    def where(self, token: int) -> tuple[str, int, int]:
        """(split, document, line) of a line token."""
        split, doc, line = self._lines[int(token)].split()
        return split, int(doc), int(line)


def _documents(split: str, n_docs: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(f"{split} {d} {i}\n\n" if i % 7 == 3 else f"{split} {d} {i}\n"
                    for i in range(rng.integers(1, 40))) for d in range(n_docs)]


@pytest.fixture(scope="module")
def line_data():
    docs = {"train": _documents("train", 30, 0), "validation": _documents("validation", 6, 1)}
    lines = [s for texts in docs.values() for t in texts for s in split_sentences(t)]
    tok = LineTokenizer(lines)
    streams = {k: encode_sentences(v, tok) for k, v in docs.items()}

    def make(process_index=0, process_count=1, seed=0, seq_len=16):
        return NSPData(tokenizer=tok, train=streams["train"], validation=streams["validation"],
                       seq_len=seq_len, global_batch=16, eval_batches=20, seed=seed,
                       process_index=process_index, process_count=process_count,
                       dataset_key="lines")
    return make, tok, streams


def test_pair_row_matches_a_hand_built_example():
    tok = LineTokenizer(["x\n"])
    row = pair_row(np.array([10, 11]), np.array([20]), 8, tok)
    #            [CLS] A   A  [SEP] B [SEP] pad pad
    want = {"inputs": [5, 10, 11, 6, 20, 6, 0, 0], "type_ids": [0, 0, 0, 0, 1, 1, 0, 0],
            "positions": [0, 1, 2, 3, 4, 5, 0, 0], "segment_ids": [1, 1, 1, 1, 1, 1, 0, 0]}
    for key, value in want.items():
        np.testing.assert_array_equal(row[key], value, err_msg=key)


def test_sentences_are_non_blank_lines_and_runs_stay_in_a_document():
    assert split_sentences("a\n\n  \n b\nc") == ["a\n", " b\n", "c\n"]
    tok = LineTokenizer([f"{k}\n" for k in "abcdefg"])
    stream = encode_sentences(["a\nb\nc\nd\ne\n", "f\n", "g\n\n"], tok)
    np.testing.assert_array_equal(stream.doc_starts, [0, 5, 6, 7])
    # runs of >= 2 tokens and >= 2 sentences; the lone last sentence joins the run before it;
    # one-sentence documents give no run
    np.testing.assert_array_equal(chunk_documents(stream, 2), [[0, 0, 2], [0, 2, 5]])


def test_truncation_is_the_truncate_seq_pair_loop():
    for la, lb, budget in itertools.product(range(1, 14), range(1, 14), range(2, 14)):
        a, b = la, lb
        while a + b > budget:  # Google BERT's truncate_seq_pair, by lengths
            if a > b:
                a -= 1
            else:
                b -= 1
        assert truncated_lengths(la, lb, budget) == (a, b), (la, lb, budget)


def _read_pair(row: dict, tok: LineTokenizer) -> tuple[list, list]:
    """(A, B) as (split, document, line) triples, read off the unmasked targets."""
    real = row["targets"][row["segment_ids"] == 1]
    types = row["type_ids"][row["segment_ids"] == 1]
    assert real[0] == tok.cls_id and real[-1] == tok.sep_id
    sep = np.flatnonzero(real == tok.sep_id)
    assert len(sep) == 2 and (types[: sep[0] + 1] == 0).all() and (types[sep[0] + 1 :] == 1).all()
    a, b = real[1 : sep[0]], real[sep[0] + 1 : -1]
    return [tok.where(t) for t in a], [tok.where(t) for t in b]


def test_pairs_are_half_true_continuations_and_never_cross_splits(line_data):
    make, tok, _ = line_data
    data = make()
    rows = [(b, "train") for b in (data.batch(s) for s in range(150))]
    rows += [(b, "validation") for b in data.eval_batches()]
    n = is_next = 0
    for batch, split in rows:
        for j in range(len(batch["nsp_labels"])):
            row = {k: v[j] for k, v in batch.items()}
            a, b = _read_pair(row, tok)
            assert {s for s, _, _ in a + b} == {split}  # partners from the same split only
            (doc,) = {d for _, d, _ in a}
            a_lines, b_lines = [ln for _, _, ln in a], [ln for _, _, ln in b]
            assert a_lines == list(range(a_lines[0], a_lines[0] + len(a_lines)))
            assert b_lines == list(range(b_lines[0], b_lines[0] + len(b_lines)))
            # the hand count: B is the true next text of A's document
            follows = all(d == doc for _, d, _ in b) and b_lines[0] > a_lines[-1]
            assert row["nsp_labels"] == (0 if follows else 1)
            assert len(a) + len(b) <= 13  # [CLS] A [SEP] B [SEP] within seq_len 16
            n, is_next = n + 1, is_next + follows
    assert n == 150 * 16 + 20 * 16
    assert abs(is_next - n / 2) <= 4 * math.sqrt(n / 4)  # 4 sigma of Binomial(n, 1/2)


def test_pair_batches_are_pure_and_independent_of_process_count(line_data):
    make = line_data[0]
    whole, again = make().batch(5), make().batch(5)
    halves = [make(p, 2).batch(5) for p in range(2)]
    assert set(whole) == {"inputs", "targets", "weights", "type_ids", "positions",
                          "segment_ids", "nsp_labels"}
    for key in whole:
        np.testing.assert_array_equal(whole[key], again[key])
        np.testing.assert_array_equal(whole[key], np.concatenate([h[key] for h in halves]))
    assert not np.array_equal(make(seed=1).batch(5)["targets"], whole["targets"])
    special = [0, 5, 6]  # padding, [CLS], [SEP] are never selected for masking
    assert not (np.isin(whole["targets"], special) & (whole["weights"] == 1)).any()


def test_nsp_switch_is_a_masked_lm_option_only():
    gpt = get_preset("gpt-tiny")
    bad = dataclasses.replace(gpt, data=dataclasses.replace(gpt.data, nsp=True))
    with pytest.raises(ConfigError, match="data.nsp=true: the causal_lm objective"):
        validate(bad)
    assert get_preset("bert-tiny").data.nsp and get_preset("bert-base").data.nsp


@pytest.mark.slow
def test_a_short_nsp_run_logs_mlm_and_nsp_accuracy(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(60):
        lines = [f"def f{i}_{j}(x):\n    return x * {j} + {i}\n" for j in range(12)]
        (root / f"doc{i:02d}.txt").write_text("".join(lines), encoding="utf-8")
    small = ["model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.d_ff=64",
             "model.max_len=32", "model.vocab_size=384", "data.tokenizer=byte",
             "train.global_batch=8", "train.steps=3", "train.log_every=1", "train.eval_every=3",
             "train.eval_batches=1", "optim.warmup_steps=1", "mesh.data=8", "mesh.fsdp=1",
             "mesh.tensor=1"]
    workdir = tmp_path / "run"
    args = ["train", "--config", "bert-tiny", "--workdir", str(workdir), "--quiet",
            "--data", f"text:{root}/*.txt", "--set", f"data.cache_dir={tmp_path / 'cache'}"]
    assert main(args + [arg for s in small for arg in ("--set", s)]) == 0
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if "loss" in r]
    evals = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in train] == [1, 2, 3] and [r["step"] for r in evals] == [3]
    for r in train:
        assert 0 <= r["mlm_accuracy"] <= 1 and 0 <= r["nsp_accuracy"] <= 1
        # loss = MLM mean + NSP mean (§3.1), each logged beside it
        assert r["loss"] == pytest.approx(r["mlm_loss"] + r["nsp_loss"], rel=1e-5)
    assert {"eval_mlm_accuracy", "eval_nsp_accuracy", "eval_nsp_loss"} <= set(evals[0])


def test_a_split_with_one_document_is_a_data_error(line_data):
    _, tok, streams = line_data
    one = encode_sentences(["validation 0 1\nvalidation 0 2\n"], tok)
    with pytest.raises(DataError, match=r"validation split of lines has 1 runs .* 1 non-empty"):
        NSPData(tokenizer=tok, train=streams["train"], validation=one, seq_len=16,
                global_batch=16, eval_batches=1, seed=0, process_index=0, process_count=1,
                dataset_key="lines")


def test_a_stores_sentence_layout_is_each_splits_lines_tokenized_one_by_one(tmp_path):
    """Oracle: encode_sentences over each split's documents in file order (the split rule
    written out: sha256(key) mod 1000 < 30, else the smallest hash goes to validation)."""
    from scaling.data import ByteTokenizer
    from scaling.data.api import open_store
    from scaling.presets import get_preset as preset

    texts = {f"d{i:02d}.txt": "".join(f"doc {i} line {j}\n" + ("\n" if j % 5 == 4 else "")
                                      for j in range(3 + i)) for i in range(12)}
    for name, text in texts.items():
        (tmp_path / name).write_text(text)
    config = validate(dataclasses.replace(preset("bert-tiny"), data=dataclasses.replace(
        preset("bert-tiny").data, source=f"text:{tmp_path}/*.txt", tokenizer="byte",
        nsp=True, cache_dir=str(tmp_path / "cache"))))
    store = open_store(config, progress=False)

    def value(k):
        return int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big")

    val = [k for k in texts if value(k) % 1000 < 30] or [
        min(texts, key=lambda k: hashlib.sha256(k.encode()).digest())]
    for split, names in (("train", [k for k in texts if k not in val]), ("validation", val)):
        want = encode_sentences([texts[k] for k in names], ByteTokenizer())
        got = getattr(store, split).sentence_stream()
        np.testing.assert_array_equal(got.sentence_starts, want.sentence_starts)
        np.testing.assert_array_equal(got.doc_starts, want.doc_starts)
        np.testing.assert_array_equal(got.tokens[0:len(got.tokens)], want.tokens)
        np.testing.assert_array_equal(got.span(1, 4), want.span(1, 4))
