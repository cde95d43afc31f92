"""A run directory on object storage: `--workdir gs://bucket/run` trains, checkpoints and
resumes through etils.epath and tensorstore's GCS client, against a local GCS stand-in
(tests/fake_gcs.py). The oracle is the same run in a local directory: the losses and the
final parameters must be identical. Also the object-storage run lock (scaling/lock.py)."""

import json

import numpy as np
import pytest
from fake_gcs import fake_gcs

from scaling.cli import main

SETS = ["model.n_layers=2", "model.d_model=32", "model.n_heads=2", "model.d_ff=64",
        "model.max_len=16", "model.vocab_size=264", "data.tokenizer=byte",
        "train.global_batch=8", "train.steps=6", "train.log_every=1", "train.eval_every=3",
        "train.eval_batches=1", "optim.warmup_steps=2"]


def _args(corpus, workdir: str) -> list[str]:
    flags = [a for s in SETS for a in ("--set", s)]
    return ["train", "--config", "gpt-tiny", "--workdir", workdir, "--quiet",
            "--data", f"text:{corpus}/*.txt", "--set", f"data.cache_dir={corpus}/cache", *flags]


def _rows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _final_params(directory) -> dict:
    from scaling.checkpoint.manager import Checkpoints

    ckpt = Checkpoints(str(directory), read_only=True)
    try:
        state = ckpt.restore_numpy(ckpt.latest_step())
    finally:
        ckpt.manager.close()
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(state["params"])[0]
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for i in range(12):
        (root / f"d{i}.txt").write_text("".join(f"x{i} = {j} * y\n" for j in range(40)))
    return root


@pytest.mark.slow
def test_a_gcs_workdir_trains_and_resumes_like_a_local_one(corpus, tmp_path, capsys):
    local = tmp_path / "local"
    assert main(_args(corpus, str(local))) == 0  # 6 steps straight, on a local disk
    with fake_gcs(tmp_path / "gcs") as requests:
        url = "gs://scaling-test/run"
        assert main([*_args(corpus, url), "--stop_at", "3"]) == 0
        assert main(_args(corpus, url)) == 0  # resumes from step 3 in the bucket
        remote_params = _final_params(url + "/checkpoints")
    capsys.readouterr()
    bucket = tmp_path / "gcs" / "scaling-test" / "run"
    # the arrays went through tensorstore's GCS client (HTTP uploads under checkpoints/)
    uploads = [p for m, p in requests if m == "POST"]
    assert len(uploads) > 10 and all(p == "/upload/storage/v1/b/scaling-test/o" for p in uploads)
    for step in (3, 6):  # committed the object-storage way: a marker, no rename
        assert (bucket / "checkpoints" / str(step) / "commit_success.txt").is_file()
    assert not (bucket / ".lock").exists()  # released at the end of each session
    assert any(p.name.startswith("events.out.tfevents") for p in bucket.iterdir())
    assert json.loads((bucket / "config.json").read_text())["model"]["d_model"] == 32
    sessions = _rows((bucket / "sessions.jsonl").read_text())
    assert [(r["start_step"], r["end_step"]) for r in sessions] == [(0, 3), (3, 6)]
    assert json.loads((bucket / "summary.json").read_text())["start_step"] == 3
    # one history, equal to the uninterrupted local run's
    remote_rows, local_rows = (_rows((d / "metrics.jsonl").read_text()) for d in (bucket, local))
    loss = lambda rows: [(r["step"], r["loss"]) for r in rows if "loss" in r]  # noqa: E731
    assert loss(remote_rows) == loss(local_rows) and len(loss(local_rows)) == 6
    evals = lambda rows: [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]  # noqa: E731
    assert evals(remote_rows) == evals(local_rows)
    local_params = _final_params(local / "checkpoints")
    assert remote_params.keys() == local_params.keys()
    for k, v in local_params.items():
        np.testing.assert_array_equal(remote_params[k], v, err_msg=k)


def test_an_object_lock_names_its_holder_and_expires(tmp_path, monkeypatch):
    from scaling import lock
    from scaling.errors import UserError

    monkeypatch.setattr(lock, "SETTLE_S", 0.0)
    with fake_gcs(tmp_path / "gcs"):
        first = lock.RunLock("gs://scaling-test/run", "train").acquire()
        held = json.loads((tmp_path / "gcs" / "scaling-test" / "run" / ".lock").read_text())
        assert held["command"] == "train" and held["token"] == first.token
        with pytest.raises(UserError, match=r"in use by `scaling train` on host .*PID \d+"):
            lock.RunLock("gs://scaling-test/run", "sweep").acquire()
        first._stop.set()  # the holder dies: its heartbeat stops
        first._thread.join()
        monkeypatch.setattr(lock, "STALE_S", 0.0)  # ... and its lock grows stale
        second = lock.RunLock("gs://scaling-test/run", "sweep").acquire()
        monkeypatch.setattr(lock, "STALE_S", 120.0)
        with pytest.raises(UserError, match="in use by `scaling sweep`"):
            lock.RunLock("gs://scaling-test/run", "train").acquire()
        second.release()
        assert not (tmp_path / "gcs" / "scaling-test" / "run" / ".lock").exists()
        lock.RunLock("gs://scaling-test/run", "train").acquire().release()
