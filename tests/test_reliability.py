"""Reliability II (docs/reliability.md): one job per run directory, resume past damaged
checkpoints, metrics that survive torn writes and full disks, and every bad input one line
with exit code 2."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import subprocess_env, word_corpus

from scaling.checkpoint.manager import Checkpoints, checkpoint_dir
from scaling.cli import main
from scaling.lock import LOCK_NAME, RunLock

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
TINY = ["model.n_layers=2", "model.d_model=32", "model.n_heads=4", "model.d_ff=64",
        "model.max_len=16", "model.vocab_size=384", "data.tokenizer=byte",
        "train.global_batch=8", "train.log_every=1", "train.eval_every=100",
        "train.eval_batches=1", "train.checkpoint_every=2", "optim.warmup_steps=2",
        "model.dropout=0.0", "model.attn_dropout=0.0"]


def sets(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("words")
    return word_corpus(root, 6, 0, WORDS, lines=40)


def train(workdir, data, steps, *extra):
    return main(["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
                 *sets(data + TINY + [f"train.steps={steps}"]), *extra])


def losses(workdir):
    rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    return {r["step"]: r["loss"] for r in rows if "lr" in r}


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """6 steps uninterrupted: the losses every interrupted run must reproduce."""
    workdir = tmp_path_factory.mktemp("straight") / "run"
    assert train(workdir, data, 6) == 0
    return losses(workdir)


@pytest.fixture(scope="module")
def four_steps(data, tmp_path_factory):
    """A run stopped after step 4 (checkpoints at 2 and 4), to copy and damage."""
    workdir = tmp_path_factory.mktemp("four") / "run"
    assert train(workdir, data, 6, "--stop_at", "4") == 0
    return workdir


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.startswith("scaling: error")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --------------------------------------------------------------------------------------------
# The run-directory lock.


def test_a_second_trainer_on_a_locked_directory_exits_2_naming_the_holder(data, tmp_path):
    workdir = tmp_path / "run"
    env = subprocess_env(tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-m", "scaling.cli", "train", "--config", "gpt-tiny", "--workdir",
         str(workdir), "--quiet", *sets(data + TINY + ["train.steps=100000"])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = workdir / LOCK_NAME
        for _ in range(600):  # the holder writes its PID once it has the lock
            if lock.exists() and str(first.pid) in lock.read_text():
                break
            time.sleep(0.1)
        second = subprocess.run(
            [sys.executable, "-m", "scaling.cli", "train", "--config", "gpt-tiny",
             "--workdir", str(workdir), "--quiet", *sets(data + TINY + ["train.steps=5"])],
            env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and f"PID {first.pid}" in err[0] and "in use by" in err[0]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the holder died: its lock is taken over (the kernel released it), the file rewritten
    with RunLock(str(workdir), "test"):
        assert str(os.getpid()) in (workdir / LOCK_NAME).read_text()


def test_a_second_sweep_on_a_locked_directory_exits_2(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("base: gpt-tiny\ntokens: [1000]\nmodels: [{n_layers: 1}]\n")
    with RunLock(str(tmp_path / "sweep"), "sweep"):
        assert main(["sweep", "--spec", str(spec), "--workdir", str(tmp_path / "sweep")]) == 2
    assert "in use by `scaling sweep`" in one_error_line(capsys)


# --------------------------------------------------------------------------------------------
# Resume past a damaged latest step.


def _truncate_the_array_files(step_dir):
    """Every array data file (OCDBT `d/` files) cut to a third, as a partial copy leaves
    them. (Cutting only the largest one is not always damage: a save can leave a data file
    that the final manifest no longer references, and that one was sometimes the largest.)"""
    files = [p for p in (step_dir / "state").rglob("*")
             if p.is_file() and p.parent.name == "d" and p.stat().st_size > 1000]
    assert files
    for path in files:
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size // 3)


def _empty(step_dir):
    shutil.rmtree(step_dir)
    step_dir.mkdir()


def _corrupt_meta(step_dir):
    (step_dir / "meta" / "metadata").write_bytes(b"\x00{not json")


def _delete_metadata(step_dir):
    (step_dir / "state" / "_METADATA").unlink()


@pytest.mark.slow
@pytest.mark.parametrize("damage", [_truncate_the_array_files, _empty, _corrupt_meta,
                                    _delete_metadata], ids=lambda f: f.__name__.strip("_"))
def test_a_damaged_latest_step_is_moved_aside_and_the_previous_one_resumes_exactly(
        four_steps, straight, data, tmp_path, capsys, damage):
    workdir = tmp_path / "run"
    shutil.copytree(four_steps, workdir)
    damage(workdir / "checkpoints" / "4")
    capsys.readouterr()
    assert train(workdir, data, 6) == 0
    err = capsys.readouterr().err
    assert "checkpoint step 4 is damaged" in err and "resuming from step 2" in err
    assert (workdir / "checkpoints" / "4.damaged").is_dir()  # kept, never deleted
    assert losses(workdir) == straight  # steps 3..6 redone: the uninterrupted numbers


def test_no_readable_step_stops_with_exit_2(four_steps, data, tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(four_steps, workdir)
    for step in ("2", "4"):
        _corrupt_meta(workdir / "checkpoints" / step)
    assert train(workdir, data, 6) == 2
    assert "no readable checkpoint" in one_error_line(capsys)


# --------------------------------------------------------------------------------------------
# Metrics and checkpoints on a full disk.


def test_a_torn_last_metrics_line_is_dropped_on_resume(four_steps, straight, data, tmp_path,
                                                       capsys):
    workdir = tmp_path / "run"
    shutil.copytree(four_steps, workdir)
    with open(workdir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write('{"step": 5, "loss": 3.1')  # a write cut off by a crash
    capsys.readouterr()
    assert train(workdir, data, 6) == 0
    assert "dropped a torn or unreadable row" in capsys.readouterr().err
    assert losses(workdir) == straight


def test_a_full_disk_while_logging_stops_with_exit_2_and_the_rerun_resumes_exactly(
        straight, data, tmp_path, monkeypatch, capsys):
    from scaling import metrics

    workdir = tmp_path / "run"
    with monkeypatch.context() as m:  # the row of step 5 does not fit on the disk
        m.setattr(metrics.MetricsWriter, "_write_line", _raise_at_step(5))
        assert train(workdir, data, 6) == 2
    line = one_error_line(capsys)
    assert "No space left" in line and "last committed checkpoint (step 4)" in line
    assert train(workdir, data, 6) == 0
    assert losses(workdir) == straight


def _raise_at_step(step):
    original = __import__("scaling.metrics", fromlist=["x"]).MetricsWriter._write_line

    def write(self, text):
        if json.loads(text)["step"] == step:
            self._jsonl.write(text[: len(text) // 2])  # a partial line, as a full disk leaves
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, text)

    return write


def test_a_full_disk_while_checkpointing_stops_with_exit_2_and_the_rerun_resumes_exactly(
        straight, data, tmp_path, monkeypatch, capsys):
    workdir = tmp_path / "run"
    original, calls = Checkpoints._check_writable, []

    def full_at_the_second_save(self):
        calls.append(1)
        if len(calls) == 2:
            raise self._save_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
        return original(self)

    with monkeypatch.context() as m:  # the save of step 4 finds the disk full
        m.setattr(Checkpoints, "_check_writable", full_at_the_second_save)
        assert train(workdir, data, 6) == 2
    assert "last committed step 2 is intact" in one_error_line(capsys)
    assert Checkpoints(checkpoint_dir(workdir), read_only=True).all_steps() == [2]
    assert train(workdir, data, 6) == 0
    assert losses(workdir) == straight


# --------------------------------------------------------------------------------------------
# Bad input of every kind: one line, exit 2, no traceback.


def _bad_config(workdir, text):
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(text)
    return workdir


# name: (argv, the message expected). "{run}" is a real run directory (checkpoints at steps
# 2 and 4), "{tmp}" an empty one, so that the check under test is the one that fires: with
# it deleted, the command would get further (and print something else).
BAD = {
    "nan lr": (["params", "--config", "gpt-tiny", "--set", "optim.lr=nan"],
               "--set optim.lr=nan: expected a finite number"),
    "inf dropout": (["params", "--config", "gpt-tiny", "--set", "model.dropout=inf"],
                    "--set model.dropout=inf: expected a finite number"),
    "huge vocabulary": (["params", "--config", "gpt-tiny", "--set", "model.vocab_size=1e12"],
                        "model.vocab_size=1000000000000: larger than 2,147,483,647"),
    "overflowing model": (["params", "--config", "gpt-tiny", "--set", "model.d_model=2000000",
                           "--set", "model.n_heads=1", "--set", "model.d_ff=2000000"],
                          "parameters, more than 1e+13"),
    "host devices": (["--host-devices", "100000", "params", "--config", "gpt-tiny"],
                     "--host-devices 100000: at most 1024 simulated CPU devices"),
    "stop_at 0": (["train", "--config", "gpt-tiny", "--workdir", "{tmp}", "--stop_at", "0"],
                  "--stop_at 0: expected a step >= 1"),
    "bench steps 0": (["bench", "data", "--config", "gpt-tiny", "--steps", "0"],
                      "--steps 0: expected at least one step"),
    "temperature nan": (["generate", "--workdir", "{run}", "--prompt", "a", "--temperature",
                         "nan"], "--temperature nan: expected a finite value >= 0"),
    "temperature -1": (["generate", "--workdir", "{run}", "--prompt", "a", "--temperature",
                        "-1"], "--temperature -1.0: expected a finite value >= 0"),
    "top-p 0": (["generate", "--workdir", "{run}", "--prompt", "a", "--top-p", "0"],
                "--top-p 0.0: expected a mass in (0, 1]"),
    "non-UTF-8 prompt": (["generate", "--workdir", "{run}", "--prompt", "caf\udce9"],
                         "--prompt is not valid UTF-8 text"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_flags(name, four_steps, tmp_path, capsys):
    argv, needle = BAD[name]
    argv = [a.replace("{run}", str(four_steps)).replace("{tmp}", str(tmp_path / "run"))
            for a in argv]
    assert main(argv) == 2
    assert needle in one_error_line(capsys)


def test_the_generate_run_directory_is_valid(four_steps, capsys):
    """The run that test_bad_flags' generate cases use generates with good flags."""
    assert main(["generate", "--workdir", str(four_steps), "--prompt", "a",
                 "--max-new-tokens", "2", "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("a")


@pytest.mark.parametrize("text,needle", [
    ("{not json", "cannot read the run's config"),
    ("[1, 2]", "expected a JSON object"),
    ('{"model": {"n_layers": "two"}}', "model.n_layers='two' is not a int"),
    ('{"model": {"n_heads": 5}}', "does not divide"),
    ('{"train": {"steps": -1}}', "must be a positive integer"),
])
def test_a_damaged_config_json_is_refused(text, needle, tmp_path, capsys):
    workdir = _bad_config(tmp_path / "run", text)
    assert main(["generate", "--workdir", str(workdir), "--prompt", "x"]) == 2
    assert needle in one_error_line(capsys)


def test_files_that_are_directories_binary_or_unwritable(tmp_path, capsys):
    binary = tmp_path / "results.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert main(["fit", "--results", str(binary), "--out", str(tmp_path / "o")]) == 2
    assert "not a UTF-8 text table" in one_error_line(capsys)
    table = tmp_path / "ok.csv"
    table.write_text("N,D,loss\n1e6,1e8,3.0\n2e6,1e8,2.9\n4e6,1e8,2.8\n")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["fit", "--results", str(table), "--out", str(blocker), "--bootstrap", "0",
                 "--starts", "1"]) == 2
    assert str(blocker) in one_error_line(capsys)
    spec = tmp_path / "spec.yaml"
    spec.write_text("base: gpt-tiny\ntokens: [1000]\nladder: {d_model: [64], head_dim: 0}\n")
    assert main(["sweep", "--spec", str(spec), "--workdir", str(tmp_path / "s"),
                 "--dry-run"]) == 2
    assert "must be positive" in one_error_line(capsys)
    assert main(["params", "--config", "gpt-tiny", "--set",
                 f"data.cache_dir={blocker}/cache"]) == 0  # params never touches the cache
    assert train(tmp_path / "run", ["data.source=embedded", f"data.cache_dir={blocker}/c"],
                 2) == 2
    assert "a_file" in one_error_line(capsys)


def test_a_truncated_store_shard_says_what_to_do(data, tmp_path, capsys):
    workdir = tmp_path / "run"
    cache = [s for s in data if s.startswith("data.cache_dir=")][0].split("=", 1)[1]
    assert train(workdir, data, 2) == 0
    victim = sorted(__import__("pathlib").Path(cache).glob("stores/*/train/*.tokens.npy"))[0]
    backup = victim.read_bytes()
    try:
        victim.write_bytes(backup[: len(backup) // 2])
        assert train(tmp_path / "run2", data, 2) == 2
        line = one_error_line(capsys)
        assert victim.name in line and "the store is damaged: delete it" in line
    finally:
        victim.write_bytes(backup)


@pytest.mark.slow
def test_relative_paths_are_stored_absolute(data, tmp_path, monkeypatch):
    corpus = [s for s in data if s.startswith("data.source=")][0].split(":", 1)[1]
    monkeypatch.chdir(os.path.dirname(os.path.dirname(corpus)))
    rel = os.path.relpath(corpus)
    workdir = tmp_path / "run"
    assert main(["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
                 "--data", f"text:{rel}", *sets(TINY + ["train.steps=1",
                                                        "data.cache_dir=rel_cache"])]) == 0
    saved = json.loads((workdir / "config.json").read_text())["data"]
    assert saved["source"] == f"text:{os.path.abspath(rel)}"
    assert os.path.isabs(saved["cache_dir"])
    assert np.isfinite(losses(workdir)[1])


@pytest.mark.slow
def test_relative_paths_inside_a_mixture_are_stored_absolute(data, tmp_path, monkeypatch):
    """A relative path inside `mix:` is made absolute in config.json (weights as given), so
    a command started from another directory reads the same files."""
    corpus = [s for s in data if s.startswith("data.source=")][0].split(":", 1)[1]
    monkeypatch.chdir(os.path.dirname(os.path.dirname(corpus)))
    rel = os.path.relpath(corpus)
    workdir = tmp_path / "run"
    source = f"mix:0.7*text:{rel}, 0.3*text:{rel}"
    assert main(["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
                 "--data", source, *sets(TINY + ["train.steps=2", "train.eval_every=2"])]) == 0
    saved = json.loads((workdir / "config.json").read_text())["data"]["source"]
    assert saved == f"mix:0.7*text:{os.path.abspath(rel)},0.3*text:{os.path.abspath(rel)}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the relative glob matches nothing here
    assert main(["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
                 "--data", saved, *sets(TINY + ["train.steps=4", "train.eval_every=2"])]) == 0
    assert sorted(losses(workdir)) == [1, 2, 3, 4]


def test_a_task_file_that_is_a_directory_and_an_unwritable_run_directory(
        four_steps, tmp_path, monkeypatch, capsys):
    assert main(["eval", "--workdir", str(four_steps), "--tasks", f"jsonl:{tmp_path}"]) == 2
    assert str(tmp_path) in one_error_line(capsys)
    task = tmp_path / "task.jsonl"
    task.write_text("\n".join(json.dumps({"context": "alpha", "choices": [" beta", " zeta"],
                                          "answer": 0}) for _ in range(4)) + "\n")
    real_open = open

    def read_only_run_dir(path, mode="r", *args, **kwargs):
        if str(path).endswith("eval.jsonl") and "a" in mode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only_run_dir)
    assert main(["eval", "--workdir", str(four_steps), "--tasks", f"jsonl:{task}"]) == 2
    out, err = capsys.readouterr()
    assert "acc" in out  # the scores were printed before the write failed
    assert "eval.jsonl" in err and len(err.strip().splitlines()) == 1


def test_a_full_disk_while_building_a_store_is_one_line_and_publishes_nothing(
        tmp_path, monkeypatch, capsys):
    from scaling.data.store import shards

    (tmp_path / "docs").mkdir()
    for i in range(3):
        (tmp_path / "docs" / f"{i}.txt").write_text(f"document {i}\n" * 50)

    def no_space(path, array):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(shards, "save_npy", no_space)
    assert train(tmp_path / "run", [f"data.source=text:{tmp_path}/docs/*.txt",
                                    f"data.cache_dir={tmp_path / 'cache'}"], 2) == 2
    line = one_error_line(capsys)
    assert "No space left on device" in line and ".tokens.npy" in line
    assert list((tmp_path / "cache" / "stores").glob("text-*"))  # started ...
    assert not list((tmp_path / "cache" / "stores").glob("*/manifest.json"))  # not published


@pytest.mark.parametrize("args", [
    ["params", "--config", "gpt-5"],
    ["params", "--config", "gpt-tiny", "--set", "model.dmodel=3"],
    ["params", "--config", "gpt-tiny", "--set", "model.d_model=abc"],
    ["params", "--config", "gpt-tiny", "--set", "optim.lr=nan"],
    ["params", "--config", "gpt-tiny", "--set", "model.norm=middle"],
    ["params", "--config", "gpt-tiny", "--set", "model.family=rnn"],
    ["params", "--config", "gpt-tiny", "--set", "model.n_heads=3"],
    ["params", "--config", "gpt-tiny", "--set", "optim.schedule=linear"],
    ["train"],
    ["frobnicate"],
])
def test_usage_errors_fail_before_jax_and_the_heavy_libraries_are_imported(args, tmp_path):
    probe = ("import sys; from scaling.cli import main; code = main(sys.argv[1:]); "
             "heavy = [m for m in ('jax', 'flax', 'orbax', 'scipy', 'matplotlib', "
             "'tensorflow_datasets', 'grain') if m in sys.modules]; print(code, heavy)")
    out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                         env=subprocess_env(tmp_path), timeout=60)
    assert out.stdout.strip() == "2 []", out.stdout + out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
