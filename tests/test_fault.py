"""Faults during training: non-finite steps are skipped, logged and bounded (docs/reliability.md
test 5); bad inputs end in one line and exit code 2 (test 9)."""

import json
import os
import random

import jax
import numpy as np
import pytest
from helpers import word_corpus

from scaling.checkpoint.manager import Checkpoints, checkpoint_dir
from scaling.cli import main
from scaling.data.batches.lm import LMData
from scaling.data.batches.loader import LMIterator

TINY = ["data.tokenizer=byte", "model.vocab_size=384", "model.n_layers=1", "model.d_model=64",
        "model.n_heads=2", "model.d_ff=128", "model.max_len=32", "train.global_batch=8",
        "train.eval_batches=1", "mesh.data=1", "mesh.fsdp=8", "mesh.tensor=1",
        "train.log_every=1", "train.eval_every=1000", "train.checkpoint_every=1",
        "train.keep_last=10", "optim.warmup_steps=0"]
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(--set overrides pointing at a small text corpus, the directory)."""
    root = tmp_path_factory.mktemp("fault")
    return word_corpus(root, 5, seed=1, words=WORDS), root


def train_args(workdir, sets):
    args = ["train", "--config", "gpt-tiny", "--quiet", "--workdir", str(workdir)]
    for s in sets:
        args += ["--set", s]
    return args


def poison(monkeypatch, bad_steps: set[int]):
    """Batches `bad_steps` (0-based) get NaN loss weights, so their loss and gradients are
    NaN; the others are untouched."""
    original = LMIterator.__next__

    def poisoned(self):
        step = self.step
        batch = original(self)
        if step in bad_steps:
            batch = dict(batch, weights=np.full_like(batch["weights"], np.nan))
        return batch

    monkeypatch.setattr(LMIterator, "__next__", poisoned)


def rows(workdir):
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_nonfinite_step_changes_nothing_and_is_logged(corpus, tmp_path, monkeypatch, capsys):
    """Batch 2 is poisoned: step 3 is skipped (logged, counted); the state after step 3 equals
    the state after step 2 except the counters; every checkpoint is finite."""
    sets, _ = corpus
    poison(monkeypatch, {2})
    assert main(train_args(tmp_path, sets + TINY + ["train.steps=5"])) == 0
    log = rows(tmp_path)
    skip = [r for r in log if r.get("nonfinite")]
    assert skip == [{"step": 3, "nonfinite": 1, "skipped": 1, "loss": None, "grad_norm": None}]
    by_step = {r["step"]: r for r in log if "lr" in r}
    assert by_step[3]["loss"] is None and by_step[3]["skipped"] == 1
    assert by_step[4]["loss"] is not None and by_step[5]["skipped"] == 1
    assert "step 3: non-finite loss nan" in capsys.readouterr().err

    ckpt = Checkpoints(checkpoint_dir(tmp_path), read_only=True)
    states = {s: ckpt.restore_numpy(s) for s in ckpt.all_steps()}
    assert sorted(states) == [1, 2, 3, 4, 5]
    for s, state in states.items():
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state)
                   if np.issubdtype(x.dtype, np.inexact)), s
    assert (int(states[3]["step"]), int(states[3]["skipped"])) == (3, 1)
    for key in ("params", "opt_state"):
        for a, b in zip(jax.tree.leaves(states[2][key]), jax.tree.leaves(states[3][key]),
                        strict=True):
            np.testing.assert_array_equal(a, b)
    changed = jax.tree.leaves(states[3]["params"])[0] != jax.tree.leaves(states[4]["params"])[0]
    assert np.any(changed)  # training went on after the skip


@pytest.mark.slow
def test_k_nonfinite_steps_in_a_row_stop_the_run(corpus, tmp_path, monkeypatch, capsys):
    """max_nonfinite=3 and batches 1, 2, 3 poisoned: one clear line, exit 2, and the
    checkpoints hold only finite states."""
    sets, _ = corpus
    poison(monkeypatch, {1, 2, 3})
    code = main(train_args(tmp_path, sets + TINY + ["train.steps=8", "train.max_nonfinite=3"]))
    err = capsys.readouterr().err
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("scaling: error: 3 steps in a row (up to step 4) had a non-finite")
    assert [r["step"] for r in rows(tmp_path) if r.get("nonfinite")] == [2, 3, 4]
    ckpt = Checkpoints(checkpoint_dir(tmp_path), read_only=True)
    assert max(ckpt.all_steps()) <= 4


def bad_corpus(root, kind):
    root.mkdir()
    rng = random.Random(2)
    text = "\n".join(" ".join(rng.choice(WORDS) for _ in range(10)) for _ in range(200))
    for i in range(5):
        (root / f"doc{i}.txt").write_text(text if kind != "tiny" else "alpha beta",
                                          encoding="utf-8")
    if kind == "empty":
        (root / "doc9.txt").write_text("")
    if kind == "non_utf8":
        (root / "doc9.txt").write_bytes(b"caf\xe9 latin-1")
    return [f"data.source=text:{root}/doc*.txt", f"data.cache_dir={root / 'cache'}"]


@pytest.mark.parametrize("kind,extra,needle", [
    ("empty", [], "doc9.txt is empty"),
    ("non_utf8", [], "doc9.txt: not UTF-8"),
    ("tiny", [], "fewer than 8 (one batch)"),
    ("ok", ["mesh.data=3", "mesh.fsdp=1"], "needs 3 devices but 8 are available"),
    ("ok", ["model.n_heads=3"], "model.n_heads=3 does not divide model.d_model=64"),
    ("ok", ["model.vocab_sise=3"], "unknown key 'vocab_sise'"),
])
def test_bad_input_ends_in_one_line_and_exit_2(tmp_path, capsys, kind, extra, needle):
    sets = bad_corpus(tmp_path / "data", kind)
    code = main(train_args(tmp_path / "run", sets + TINY + ["train.steps=2"] + extra))
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_token_id_outside_the_vocabulary_is_caught_on_the_host(corpus, tmp_path, monkeypatch,
                                                                capsys):
    """A corrupted batch (id 999 >= 263 byte-tokenizer ids) stops the run before the device
    would clamp it."""
    sets, _ = corpus
    original = LMData.make_batch

    def corrupt(self, split, step, items):
        batch = original(self, split, step, items)
        if split == "train" and step == 0:
            batch["inputs"] = batch["inputs"].copy()
            batch["inputs"][0, 0] = 999
        return batch

    monkeypatch.setattr(LMData, "make_batch", corrupt)
    code = main(train_args(tmp_path, sets + TINY + ["train.steps=3"]))
    err = capsys.readouterr().err
    assert code == 2 and "token id 999 in batch 'inputs' is outside the vocabulary" in err
    lines = err.strip().splitlines()  # the run had started: its start-up lines, then one error
    assert lines[-1].startswith("scaling: error: token id 999")
    assert sum(line.startswith("scaling: error:") for line in lines) == 1
    assert not any("Traceback" in line for line in lines)
