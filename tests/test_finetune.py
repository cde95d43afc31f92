"""Fine-tuning (scaling finetune): row encodings against hand-built rows, the GPT-1 loss
against NumPy, the task metrics against scikit-learn/scipy, 8 devices against one, exact
resume, evaluation with predictions, and the bad-input table (one line, exit 2)."""

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from scaling import sharding
from scaling.checkpoint.manager import checkpoint_dir, committed_steps
from scaling.cli import main
from scaling.config import Config, FinetuneConfig, MeshConfig, ModelConfig, TrainConfig
from scaling.data.batches.task_rows import bert_row, gpt_row, rows_of
from scaling.data.sources.glue import glue_record, glue_splits
from scaling.data.tokenizers import ByteTokenizer
from scaling.eval import glue_metrics as M
from scaling.families import get_objective
from scaling.families.schema import synthetic_batch
from scaling.train.optimizer import make_optimizer
from scaling.train.state import init_state, state_shardings
from scaling.train.step import eval_step

TOK = ByteTokenizer()  # pad 0, bos 2, mask 4, cls 5, sep 6; byte b -> b + 7
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
TINY = ["model.vocab_size=263", "model.vocab_multiple=8", "model.d_model=32",
        "model.n_layers=1", "model.n_heads=2", "model.d_ff=64", "model.max_len=32",
        "data.tokenizer=byte", "train.seq_len=32", "train.global_batch=8", "train.steps=2",
        "train.eval_batches=1", "train.log_every=1"]


def b(text):  # byte ids
    return [c + 7 for c in text.encode()]


# --- encodings: hand-built rows ----------------------------------------------------------------

def test_bert_pair_rows_match_hand_built_example():
    rows = rows_of([((b("hi"), b("yo!")),)], bert_row, TOK, T=10, C=0)
    # [CLS] h i [SEP] y o ! [SEP] pad pad
    np.testing.assert_array_equal(rows["inputs"][0], [5, *b("hi"), 6, *b("yo!"), 6, 0, 0])
    np.testing.assert_array_equal(rows["type_ids"][0], [0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(rows["segment_ids"][0], [1] * 8 + [0, 0])
    np.testing.assert_array_equal(rows["positions"][0], [0, 1, 2, 3, 4, 5, 6, 7, 0, 0])
    # too long: the longer side is cut first, to a budget of T - 3 = 5 tokens
    cut = rows_of([((b("abcdef"), b("xy")),)], bert_row, TOK, T=8, C=0)["inputs"][0]
    np.testing.assert_array_equal(cut, [5, *b("abc"), 6, *b("xy"), 6])
    cut = rows_of([((b("ab"), b("uvwxyz")),)], bert_row, TOK, T=8, C=0)["inputs"][0]
    np.testing.assert_array_equal(cut, [5, *b("ab"), 6, *b("uvw"), 6])


def test_gpt1_input_transformation_matches_hand_built_example():
    rows = rows_of([((b("ab"), b("c")),)], gpt_row, TOK, T=8, C=0)
    # start a b delim c extract: bos=2, sep=6 as delimiter, cls=5 as extract
    np.testing.assert_array_equal(rows["inputs"][0], [2, *b("ab"), 6, *b("c"), 5, 0, 0])
    np.testing.assert_array_equal(rows["targets"][0][:5], [*b("ab"), 6, *b("c"), 5])
    np.testing.assert_array_equal(rows["weights"][0], [1, 1, 1, 1, 1, 0, 0, 0])
    # multiple choice: one sequence per choice, side by side, S = T / C = 6 columns each
    mc = rows_of([((b("q"), b("xy")), (b("q"), b("z")))], gpt_row, TOK, T=12, C=2)
    np.testing.assert_array_equal(mc["inputs"][0], [2, *b("q"), 6, *b("xy"), 5,
                                                    2, *b("q"), 6, *b("z"), 5, 0])
    np.testing.assert_array_equal(mc["positions"][0], [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 0])
    np.testing.assert_array_equal(mc["weights"][0], [1] * 5 + [0] + [1] * 4 + [0, 0])


# --- the GPT-1 objective: L = L_task + λ·L_LM -------------------------------------------------

def _np_ce(logits, labels):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], -1)[..., 0]


@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_gpt1_loss_is_task_plus_lambda_lm(lam):
    rng = np.random.default_rng(0)
    B, T, V, K = 4, 6, 11, 3
    logits = rng.normal(size=(B, K)).astype(np.float32)
    lm = rng.normal(size=(B, T, V)).astype(np.float32) * 3
    batch = {"labels": rng.integers(0, K, B).astype(np.float32),
             "targets": rng.integers(0, V, (B, T)).astype(np.int32),
             "weights": (rng.random((B, T)) < 0.7).astype(np.float32)}
    config = Config(finetune=FinetuneConfig(task_type="classification", lm_weight=lam))
    terms = get_objective("gpt_classify").loss((logits, lm), batch, config)
    task = _np_ce(logits, batch["labels"].astype(int)).sum()
    per_tok = _np_ce(lm, batch["targets"]) * batch["weights"]
    lm_sum = (per_tok.sum(-1) / np.maximum(batch["weights"].sum(-1), 1)).sum()
    if lam == 0:
        assert float(terms.total) == float(terms.metrics["task_loss"][0])  # exactly
    np.testing.assert_allclose(float(terms.total), task + lam * lm_sum, rtol=1e-5)
    np.testing.assert_allclose(float(terms.metrics["lm_loss"][0]), lm_sum, rtol=1e-5)
    assert float(terms.weight) == B


# --- metrics against scikit-learn / scipy ---------------------------------------------------------

def test_metrics_match_sklearn_and_scipy():
    rng = np.random.default_rng(1)
    for k in (2, 4):
        gold, pred = rng.integers(0, k, 200), rng.integers(0, k, 200)
        assert M.accuracy(pred, gold) == pytest.approx(sklearn.metrics.accuracy_score(gold, pred))
        assert M.matthews(pred, gold) == pytest.approx(
            sklearn.metrics.matthews_corrcoef(gold, pred), abs=1e-12)
    gold, pred = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    assert M.f1_binary(pred, gold) == pytest.approx(sklearn.metrics.f1_score(gold, pred))
    x, y = rng.normal(size=100), rng.integers(0, 5, 100).astype(float)  # ties in y
    assert M.pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y)[0])
    assert M.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0])


def test_glue_records_map_to_task_fields():
    rec = {"sentence1": b"A cat.", "sentence2": b"A dog.", "label": 1, "idx": 3}
    assert glue_record("mrpc", rec) == {"text": "A cat.", "text_pair": "A dog.", "label": 1.0}
    assert glue_record("sst2", {"sentence": b"fine", "label": -1, "idx": 0}) == {
        "text": "fine", "label": None}  # GLUE test labels are -1: unlabeled
    assert glue_record("stsb", {"sentence1": "a", "sentence2": "b", "label": 3.8})["label"] \
        == pytest.approx(3.8)
    assert glue_splits({"train", "validation_matched", "validation_mismatched",
                        "test_matched"}) == {"train": "train", "validation":
                                             "validation_matched", "test": "test_matched"}


# --- 8 simulated devices == 1 ------------------------------------------------------------------

def _ft_config(objective, family, task_type, labels, choices, mesh):
    return Config(
        model=ModelConfig(family=family, vocab_size=64, n_layers=1, d_model=32, n_heads=4,
                          d_ff=64, max_len=16, dropout=0.0, attn_dropout=0.0, vocab_multiple=8),
        mesh=mesh, train=TrainConfig(objective=objective, global_batch=8, seq_len=16),
        finetune=FinetuneConfig(task_type=task_type, num_labels=labels, num_choices=choices))


def _loss(config, n, params=None):
    """(loss, task loss), the loss's gradient (NumPy leaves) and the params, for one batch
    on the first n devices; `params` (from a 1-device call) are laid out on this mesh
    instead of initializing again."""
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:n])
    tx = make_optimizer(config.optim, 10)
    if params is None:
        params = init_state(config, tx, mesh, jax.random.key(0))[0].params
    else:
        params = jax.device_put(params, state_shardings(config, tx, mesh).params)
    fields = get_objective(config.train.objective).fields
    batch = synthetic_batch(fields, 8, 16, 64, np.random.default_rng(0))
    batch["labels"] = np.random.default_rng(1).integers(0, max(config.finetune.num_labels, 2),
                                                        8).astype(np.float32)
    batch["segment_ids"][:, -3:] = 0  # padding, so the extract token is not the last column

    def fn(params, b):  # the forward pass and loss (eval mode), sharded as in training
        with sharding.axis_rules(), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            total, weight, metrics = eval_step(config, params, b)
        return total / weight, metrics["task_loss"][0]

    b = jax.device_put(batch, sharding.batch_sharding(mesh, 1))
    (loss, task), grads = jax.jit(jax.value_and_grad(fn, has_aux=True))(params, b)
    return [float(loss), float(task)], [np.asarray(g) for g in jax.tree.leaves(grads)], params


@pytest.mark.slow
@pytest.mark.parametrize("case", [("gpt_classify", "gpt", "classification", 3, 0),
                                  ("classify", "bert", "multiple_choice", 2, 2)])
def test_finetune_loss_on_8_devices_equals_one(case):
    objective, family, task_type, labels, choices = case
    one = _ft_config(objective, family, task_type, labels, choices, MeshConfig(1, 1, 1))
    eight = dataclasses.replace(one, mesh=MeshConfig(2, 2, 2))
    ref, ref_grads, params = _loss(one, 1)
    got, grads, params8 = _loss(eight, 8, params)
    assert len(jax.tree.leaves(params8)[0].sharding.device_set) == 8
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert len(grads) == len(ref_grads)
    for g, r in zip(grads, ref_grads, strict=True):  # every parameter's gradient, head included
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-6)


# --- end to end: backbone, fine-tune, stop/resume, eval, predictions ----------------------------

def _write_task(root, n_train=32, n_dev=12):
    rng = random.Random(0)
    root.mkdir()
    for split, n in (("train", n_train), ("validation", n_dev), ("test", 5)):
        with open(root / f"{split}.jsonl", "w") as f:
            for i in range(n):
                label = i % 2
                text = " ".join(rng.choice(WORDS[:5] if label else WORDS[5:]) for _ in range(3))
                f.write(json.dumps({"text": text, "text_pair": rng.choice(WORDS),
                                    "label": label}) + "\n")
    return root


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    """A 1-layer, 32-wide gpt-family run on a small word corpus, byte tokenizer, 2 steps."""
    root = tmp_path_factory.mktemp("ft")
    (root / "corpus").mkdir()
    rng = random.Random(0)
    for i in range(4):
        (root / "corpus" / f"d{i}.txt").write_text(
            "\n".join(" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(40)))
    sets = [*TINY, f"data.source=text:{root}/corpus/d*.txt", f"data.cache_dir={root}/cache"]
    args = ["train", "--config", "gpt-tiny", "--workdir", str(root / "gpt"), "--quiet"]
    assert main(args + [x for s in sets for x in ("--set", s)]) == 0
    return root


def _finetune(backbone, workdir, *extra):
    sets = ["train.global_batch=8", "finetune.epochs=2", "optim.lr=1e-3",
            "train.checkpoint_every=3", "train.eval_every=8"]
    return main(["finetune", "--init_from", str(backbone / "gpt"), "--task",
                 str(backbone / "task"), "--workdir", str(workdir), "--quiet",
                 *[x for s in sets for x in ("--set", s)], *extra])


def _losses(workdir):
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["task_loss"], r["lm_loss"]) for r in rows if "loss" in r]


# Runs `scaling finetune ARGS` in this process, killed with SIGKILL (no handler, no cleanup)
# while logging step 7: the step-3 checkpoint has committed (step 6's save waited for it) and
# step 6's may still be in flight.
KILLED_AT_STEP_7 = """
import json, os, signal, sys
from scaling import metrics
from scaling.cli import main

original = metrics.MetricsWriter._write_line

def write(self, text):
    if json.loads(text).get("step") == 7:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, text)

metrics.MetricsWriter._write_line = write
sys.exit(main(sys.argv[1:]))
"""


def _finetune_killed(backbone, workdir):
    """The `_finetune` run in a subprocess (this process's XLA flags: 8 devices), killed."""
    sets = ["train.global_batch=8", "finetune.epochs=2", "optim.lr=1e-3",
            "train.checkpoint_every=3", "train.eval_every=8"]
    args = ["finetune", "--init_from", str(backbone / "gpt"), "--task", str(backbone / "task"),
            "--workdir", str(workdir), "--quiet", *[x for s in sets for x in ("--set", s)]]
    env = dict(os.environ, JAX_PLATFORMS="cpu")  # this process's XLA_FLAGS: its 8 devices,
    # and the flags the resume in this process records (a difference would warn, as it must)
    return subprocess.run([sys.executable, "-c", KILLED_AT_STEP_7, *args], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_finetune_killed_resumes_exactly_and_scores(backbone, tmp_path, capsys):
    _write_task(backbone / "task")
    assert _finetune(backbone, tmp_path / "full") == 0
    killed = _finetune_killed(backbone, tmp_path / "cut")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert 3 in committed_steps(checkpoint_dir(str(tmp_path / "cut")))
    assert _finetune(backbone, tmp_path / "cut") == 0
    full = _losses(tmp_path / "full")
    assert [s for s, *_ in full] == list(range(1, 9))  # 2 epochs of 32 / 8
    assert _losses(tmp_path / "cut") == full  # bit for bit
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["best_metric"] == "accuracy" and summary["best_step"] == 8
    assert (tmp_path / "full" / "best" / str(summary["best_step"])).is_dir()
    capsys.readouterr()
    pred = tmp_path / "pred.txt"
    assert main(["eval", "--workdir", str(tmp_path / "full"), "--tasks", "finetune",
                 "--predictions", str(pred)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["examples"] == 12 and result["accuracy"] == summary["best_value"]
    lines = pred.read_text().splitlines()
    gold = [json.loads(x)["label"] for x in (backbone / "task" / "validation.jsonl")
            .read_text().splitlines()]
    assert len(lines) == 12 and set(lines) <= {"0", "1"}
    assert np.mean([int(p) == g for p, g in zip(lines, gold, strict=True)]) == result["accuracy"]

    # a GPT task head has no HF class: the backbone is exported, one line says what was left
    # out (it was a KeyError); generation refuses the run in one line (it was a flax traceback)
    out = tmp_path / "hf"
    assert main(["convert", "--workdir", str(tmp_path / "full"), "--to-hf", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "note: the classification head (2 outputs on the extract token) is left out" in printed
    assert json.loads((out / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]
    assert main(["generate", "--workdir", str(tmp_path / "full"), "--prompt", "a"]) == 2
    assert "is a fine-tuned classification run" in capsys.readouterr().err


# --- bad input: one line, exit 2, naming the file and line --------------------------------------

def _task_dir(root, name, train, dev):
    d = root / name
    d.mkdir()
    for split, rows in (("train", train), ("validation", dev)):
        (d / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


GOOD = [{"text": "a", "label": 0}, {"text": "b", "label": 1}]
PAIR = [{"text": "a", "text_pair": "x", "label": 0}, {"text": "b", "text_pair": "y", "label": 1}]
BAD = {
    "unseen label": (GOOD, [{"text": "a", "label": 0}, {"text": "c", "label": 7}],
                     "validation.jsonl line 2: label 7 is not one of the classes seen"),
    "missing field": ([*GOOD, {"txt": "c", "label": 1}], GOOD,
                      "train.jsonl line 3: no field 'text'"),
    "one class": ([{"text": "a", "label": 1}, {"text": "b", "label": 1}], GOOD,
                  "train.jsonl: every train example has label 1 (one class)"),
    "pair without text_pair": (PAIR, [PAIR[0], {"text": "b", "label": 1}],
                               "validation.jsonl line 2: no field 'text_pair'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_task_input_one_line_exit_2(case, backbone, tmp_path, capsys):
    train, dev, expected = BAD[case]
    task = _task_dir(tmp_path, "t", train, dev)
    code = main(["finetune", "--init_from", str(backbone / "gpt"), "--task", str(task),
                 "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert expected in err and str(task) in err


def test_bert_objective_on_a_gpt_backbone_is_refused(backbone, tmp_path, capsys):
    task = _task_dir(tmp_path, "t", GOOD, GOOD)
    code = main(["finetune", "--init_from", str(backbone / "gpt"), "--task", str(task),
                 "--workdir", str(tmp_path / "w"), "--set", "train.objective=classify"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "a gpt run, but train.objective=classify fine-tunes bert" in err


def test_linear_decay_schedule_written_out():
    from scaling.config import OptimConfig
    from scaling.schedules import schedule

    fn = schedule(OptimConfig(lr=1.0, warmup_steps=4, schedule="linear_decay",
                              min_lr_ratio=0.0), 20)
    expected = [s / 4 if s <= 4 else (20 - s) / 16 for s in range(21)]
    np.testing.assert_allclose([float(fn(s)) for s in range(21)], expected, atol=1e-6)


def test_config_json_without_a_finetune_section_still_loads():
    from scaling.config import from_dict

    old = Config().to_dict()
    del old["finetune"]  # a config.json written before fine-tuning existed
    assert from_dict(old).finetune == FinetuneConfig()


def test_a_locked_run_directory_is_refused(backbone, tmp_path, capsys):
    """docs/reliability.md row 13: `scaling finetune` takes the run-directory lock too."""
    from scaling.lock import RunLock

    task = _task_dir(tmp_path, "t", GOOD, GOOD)
    with RunLock(str(tmp_path / "w"), "finetune"):
        code = main(["finetune", "--init_from", str(backbone / "gpt"), "--task", str(task),
                     "--workdir", str(tmp_path / "w"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "in use by" in err, err
