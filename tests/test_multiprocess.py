"""Two processes × 4 CPU devices with jax.distributed on localhost (docs/reliability.md tests 4
and 10): a SIGTERM to one process makes both save the same step and exit 0; the restarted
pair continues exactly as an uninterrupted pair; a process that dies makes the other fail
fast instead of hanging."""

import importlib.util
import json
import signal
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from helpers import subprocess_env, word_corpus

from scaling.checkpoint.manager import Checkpoints, checkpoint_dir

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("local_multiprocess",
                                               ROOT / "launch" / "local_multiprocess.py")
launcher = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(launcher)

TINY = ["data.tokenizer=byte", "model.vocab_size=384", "model.n_layers=1", "model.d_model=64",
        "model.n_heads=2", "model.d_ff=128", "model.max_len=32", "train.global_batch=8",
        "train.eval_batches=1", "mesh.data=2", "mesh.fsdp=4", "mesh.tensor=1",
        "train.log_every=1", "train.eval_every=100000", "train.steps=100000",
        "train.checkpoint_every=100000", "optim.warmup_steps=2", "model.dropout=0.1"]
WORDS = "one two three four five six seven eight nine ten eleven twelve".split()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("multiprocess")
    sets = word_corpus(root, 6, seed=3, words=WORDS)
    return root, subprocess_env(root), sets


def start_pair(setup, workdir, *extra, heartbeat_s=10):
    root, env, sets = setup
    args = ["train", "--config", "gpt-tiny", "--quiet", "--workdir", str(workdir)]
    for s in sets + TINY:
        args += ["--set", s]
    logs = workdir.parent / f"{workdir.name}-logs-{time.monotonic_ns()}"
    return launcher.spawn(2, 4, args + list(extra), str(logs), env=env,
                          heartbeat_s=heartbeat_s), logs


def finish(procs, logs, timeout=240):
    deadline = time.time() + timeout
    while any(p.poll() is None for p in procs) and time.time() < deadline:
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    outputs = [(logs / f"process{i}.log").read_text() for i in range(len(procs))]
    return [p.returncode for p in procs], outputs


def metric_rows(workdir):
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for_steps(workdir, n, procs, timeout=180):
    deadline = time.time() + timeout
    while len(metric_rows(workdir)) < n:
        assert time.time() < deadline, "the pair made no progress"
        assert all(p.poll() is None for p in procs), "a process exited early"
        time.sleep(0.1)


def losses(workdir):
    return {r["step"]: r["loss"] for r in metric_rows(workdir) if "loss" in r}


def test_sigterm_to_one_process_saves_one_step_on_both_and_resumes_exactly(setup):
    root = setup[0]
    run = root / "preempted"
    procs, logs = start_pair(setup, run)
    wait_for_steps(run, 3, procs)
    procs[1].send_signal(signal.SIGTERM)  # only one process is told
    codes, outs = finish(procs, logs)
    assert codes == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    stops = [line for out in outs for line in out.splitlines() if line.startswith("stopped at")]
    assert len(stops) == 2 and stops[0] == stops[1]  # both processes saved the same step
    step = int(stops[0].split()[3])
    assert Checkpoints(checkpoint_dir(run), read_only=True).all_steps() == [step]

    procs, logs = start_pair(setup, run, "--stop_at", str(step + 3))
    codes, outs = finish(procs, logs)
    assert codes == [0, 0], outs[0][-3000:]
    assert f"resuming from step {step}" in outs[0]

    reference = root / "reference"
    procs, logs = start_pair(setup, reference, "--stop_at", str(step + 3))
    codes, outs = finish(procs, logs)
    assert codes == [0, 0], outs[0][-3000:]
    assert losses(run) == losses(reference)
    assert sorted(losses(run)) == list(range(1, step + 4))
    a = Checkpoints(checkpoint_dir(run), read_only=True).restore_numpy(step + 3)
    b = Checkpoints(checkpoint_dir(reference), read_only=True).restore_numpy(step + 3)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y, strict=True)


@pytest.mark.parametrize("victim", [1, 0])
def test_a_dead_process_makes_the_other_fail_fast(setup, victim):
    """kill -9 one process mid-run: the survivor exits non-zero by itself (its heartbeat
    timeout, 5 s here: test_heartbeat_timeout_reaches_jax_distributed), rather than waiting
    in a collective forever. No wall-clock bound: `finish` kills a survivor still running
    after its hang guard, and a survivor killed that way (-SIGKILL) fails the test."""
    run = setup[0] / f"dead{victim}"
    procs, logs = start_pair(setup, run, heartbeat_s=5)
    wait_for_steps(run, 2, procs)
    procs[victim].kill()
    codes, outs = finish(procs, logs, timeout=240)
    assert codes[1 - victim] not in (0, None, -signal.SIGKILL), outs[1 - victim][-2000:]


def test_heartbeat_timeout_reaches_jax_distributed(monkeypatch):
    """The launcher's heartbeat_s travels as SCALING_HEARTBEAT_TIMEOUT into
    jax.distributed.initialize (the default when unset: 100 s)."""
    from scaling import distributed

    seen = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: seen.append(k))
    env = {"SCALING_COORDINATOR": "localhost:1", "SCALING_NUM_PROCESSES": "2",
           "SCALING_PROCESS_ID": "1", "SCALING_HEARTBEAT_TIMEOUT": "5"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert distributed.initialize_from_env()
    monkeypatch.delenv("SCALING_HEARTBEAT_TIMEOUT")
    assert distributed.initialize_from_env()
    assert [k["heartbeat_timeout_seconds"] for k in seen] == [5, 100]
    assert seen[0]["num_processes"] == 2 and seen[0]["process_id"] == 1
