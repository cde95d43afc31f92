"""Resume through the real command line in new processes (docs/reliability.md tests 1, 4, 6, 7).

Oracles: an uninterrupted run of the same config (bitwise-equal losses and parameters), the
warmup-cosine formula written out by hand (the learning rate after a resume with a new
`optim.lr`), and the data iterator's own pure-function batches.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from helpers import subprocess_env, word_corpus

from scaling.checkpoint.manager import Checkpoints, checkpoint_dir

pytestmark = pytest.mark.slow  # module fixtures train runs: the full suite only

TINY = ["data.tokenizer=byte", "model.vocab_size=384", "model.n_layers=1", "model.d_model=64",
        "model.n_heads=2", "model.d_ff=128", "model.max_len=32", "train.eval_batches=2",
        "mesh.data=1", "mesh.fsdp=8", "mesh.tensor=1", "optim.warmup_steps=2",
        "train.log_every=1", "train.eval_every=1000"]
# Dropout, gradient accumulation and remat all on: the resume must reproduce their keys.
EXACT = TINY + ["model.dropout=0.1", "model.attn_dropout=0.1", "train.microbatches=2",
                "train.global_batch=16", "model.remat=full", "train.steps=8",
                "train.checkpoint_every=3"]
WORDS = "the quick brown fox jumps over a lazy dog by the river under grey stone".split()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A small text corpus, a data cache and a shared XLA compilation cache for the
    subprocesses (the second compile of the same step is a cache hit)."""
    root = tmp_path_factory.mktemp("resume")
    sets = word_corpus(root, 6, seed=0, words=WORDS, lines=300, per_line=12)
    proc_env = subprocess_env(root, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    return {"root": root, "env": proc_env, "sets": sets}


def command(env, workdir, sets, *extra) -> list[str]:
    args = [sys.executable, "-m", "scaling.cli", "train", "--config", "gpt-tiny", "--quiet",
            "--workdir", str(workdir)]
    for s in env["sets"] + sets:
        args += ["--set", s]
    return args + list(extra)


def train_cli(env, workdir, sets, *extra, timeout=180) -> subprocess.CompletedProcess:
    proc = subprocess.run(command(env, workdir, sets, *extra), env=env["env"], text=True,
                          capture_output=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def metrics(workdir) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def losses(workdir) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in metrics(workdir) if "loss" in r}


def saved_state(workdir, step=None) -> dict:
    ckpt = Checkpoints(checkpoint_dir(workdir), read_only=True)
    state = ckpt.restore_numpy(step if step is not None else ckpt.latest_step())
    ckpt.manager.close()
    return state


def assert_trees_equal(a, b):
    """Same paths, and every array bitwise equal (dtype included)."""
    fa, fb = flat_shapes_and_values(a), flat_shapes_and_values(b)
    assert fa.keys() == fb.keys()
    for path, x in fa.items():
        np.testing.assert_array_equal(x, fb[path], err_msg=path, strict=True)


def flat_shapes_and_values(tree) -> dict:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}


@pytest.fixture(scope="module")
def straight(env):
    """8 steps without interruption."""
    workdir = env["root"] / "straight"
    train_cli(env, workdir, EXACT)
    return workdir


@pytest.fixture(scope="module")
def resumed(env):
    """4 steps, exit; a new process resumes for 4 more."""
    workdir = env["root"] / "resumed"
    first = train_cli(env, workdir, EXACT, "--stop_at", "4")
    assert "stopped at step 4 of 8" in first.stdout
    second = train_cli(env, workdir, EXACT)
    assert "resuming from step 4" in second.stderr
    return workdir


def test_exact_resume_in_a_new_process(straight, resumed):
    """Per-step losses and final parameters bitwise equal (dropout, accumulation, remat on)."""
    want, got = losses(straight), losses(resumed)
    assert sorted(got) == list(range(1, 9))  # one history: no step logged twice
    assert got == want  # exact float equality, step by step
    a, b = saved_state(straight, 8), saved_state(resumed, 8)
    assert int(a["step"]) == 8
    assert_trees_equal(a, b)


def test_the_resumed_process_loads_its_train_step_from_the_compilation_cache(straight, resumed):
    """JAX's own cache events (jax.monitoring), counted per session in sessions.jsonl: the
    module's cache starts empty, so whichever of the first two sessions ran first compiled
    the train step and wrote it (a miss); the resume in a new process loads it (a hit) and
    compiles nothing for its first step."""
    first = [json.loads(line) for line in (straight / "sessions.jsonl").read_text().splitlines()]
    runs = [json.loads(line) for line in (resumed / "sessions.jsonl").read_text().splitlines()]
    assert [r["resumed"] for r in first + runs] == [False, False, True]
    fresh = [r["compile_cache"]["first_step"] for r in first + runs[:1]]
    assert sum(f["misses"] for f in fresh) >= 1
    again = runs[1]["compile_cache"]
    assert again["first_step"]["hits"] >= 1 and again["first_step"]["misses"] == 0
    assert again["saved_s"] > 0


def test_retention_keeps_the_last_steps(resumed):
    """checkpoint_every=3 and the stop/final saves; keep_last=3 (the preset's default)."""
    assert Checkpoints(checkpoint_dir(resumed), read_only=True).all_steps() == [4, 6, 8]


def test_data_position_is_part_of_the_checkpoint(env, resumed):
    """The saved iterator state names step 4; the batches it yields are the ones an
    uninterrupted iterator yields after 4 batches."""
    from scaling.commands.common import load_config
    from scaling.families import objective_of

    ckpt = Checkpoints(checkpoint_dir(resumed), read_only=True)
    saved = ckpt.read_json(4, "data")
    assert saved["step"] == 4 and saved["global_batch"] == 16
    args = type("Args", (), {"config": "gpt-tiny", "set": env["sets"] + EXACT, "data": None})
    config = load_config(args)
    data = objective_of(config).load_data(config)
    straight_it = data.iterator(0)
    for _ in range(4):
        next(straight_it)
    resumed_it = data.iterator(0)
    resumed_it.set_state(saved)
    for _ in range(3):
        a, b = next(straight_it), next(resumed_it)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def warmup_cosine(step, lr, total, warmup=2, floor=0.1):
    """GPT-3 §B schedule, written out: linear warmup, cosine to floor*lr at `total`."""
    if step < warmup:
        return lr * step / warmup
    frac = (step - warmup) / (total - warmup)
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))


def test_sigterm_saves_at_the_next_step_and_exits_0(env):
    """SIGTERM mid-run: exit 0 with a checkpoint of the last finished step; the resume
    continues there, with the learning rate of the *current* config (docs/reliability.md 6)."""
    workdir = env["root"] / "sigterm"
    sets = TINY + ["train.steps=100000", "train.checkpoint_every=100000", "train.global_batch=8"]
    proc = subprocess.Popen(command(env, workdir, sets), env=env["env"], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(workdir / "metrics.jsonl") and len(metrics(workdir)) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    last = max(r["step"] for r in metrics(workdir))
    assert Checkpoints(checkpoint_dir(workdir), read_only=True).all_steps() == [last]
    assert f"saved step {last}" in err and "rerun the same command" in out

    resume = train_cli(env, workdir, sets + ["optim.lr=0.001"], "--stop_at", str(last + 2))
    assert f"resuming from step {last}" in resume.stderr
    assert "optim.lr 0.003 -> 0.001" in resume.stderr
    rows = {r["step"]: r for r in metrics(workdir) if "lr" in r}
    assert sorted(rows)[-2:] == [last + 1, last + 2]
    assert rows[last + 1]["lr"] == pytest.approx(warmup_cosine(last, 0.001, 100000), rel=1e-6)


def test_init_from_takes_parameters_only(env, resumed):
    """--init_from: the other run's final parameters, a fresh optimizer, step 0."""
    from scaling.commands.common import load_config
    from scaling.train.loop import Run

    args = type("Args", (), {"config": "gpt-tiny", "set": env["sets"] + EXACT, "data": None})
    run = Run(load_config(args), str(env["root"] / "finetune"), init_from=str(resumed))
    assert int(run.state.step) == 0 and int(run.state.skipped) == 0
    source = saved_state(resumed, 8)
    assert_trees_equal(source["params"], run.state.params)
    adam = run.state.opt_state[1][0]
    assert int(adam.count) == 0
    assert all(not np.any(np.asarray(x)) for x in jax.tree.leaves(adam.mu))
    run.ckpt.close()
