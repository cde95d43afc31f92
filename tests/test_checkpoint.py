"""scaling/checkpoint/ (manager, compat, noise): retention, reshard on restore, refusal of a
changed model and of non-finite values, resume metadata, kill -9 during async saves,
unwritable or full directories (docs/reliability.md tests 2, 3, 5, 6, 8)."""

import dataclasses
import json
import os
import random
import select
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling import sharding
from scaling.checkpoint.compat import ResumeWarning, check_resume_metadata, mismatched_paths
from scaling.checkpoint.manager import Checkpoints, tmp_dirs
from scaling.config import Config, MeshConfig, ModelConfig, OptimConfig, TrainConfig
from scaling.errors import UserError
from scaling.train.optimizer import make_optimizer
from scaling.train.state import init_state, sharded_abstract_state, state_shardings
from scaling.train.step import compile_steps

CONFIG = Config(
    model=ModelConfig(vocab_size=384, n_layers=1, d_model=64, n_heads=2, d_ff=128, max_len=16,
                      dropout=0.0, attn_dropout=0.0),
    optim=OptimConfig(lr=1e-2, warmup_steps=0),
    train=TrainConfig(steps=10, global_batch=8, keep_last=2),
)
FSDP8, DATA2_TENSOR2, ALL3 = MeshConfig(1, 8, 1), MeshConfig(2, 1, 2), MeshConfig(2, 2, 2)


def with_mesh(config, mesh_cfg, **model):
    return dataclasses.replace(config, mesh=mesh_cfg,
                               model=dataclasses.replace(config.model, **model))


def target_for(config, n_devices):
    """Restore target: ShapeDtypeStructs with the shardings of `config`'s mesh."""
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:n_devices], config=config)
    tx = make_optimizer(config.optim, config.train.steps)
    return mesh, sharded_abstract_state(config, tx, mesh)[0]


def trained_state(config):
    """A state after one real step (non-zero optimizer moments) on all 8 devices, and the
    eval loss of its parameters on `batch`."""
    mesh = sharding.make_mesh(config.mesh, config=config)
    tx = make_optimizer(config.optim, config.train.steps)
    state, shardings = init_state(config, tx, mesh, jax.random.key(0))
    train_fn, _ = compile_steps(config, tx, mesh, shardings)
    state, _ = train_fn(state, batch(config), jax.random.key(1))
    return state, eval_loss(config, mesh, state.params)


def eval_loss(config, mesh, params) -> float:
    tx = make_optimizer(config.optim, config.train.steps)
    _, eval_fn = compile_steps(config, tx, mesh, state_shardings(config, tx, mesh))
    total, weight, _ = eval_fn(params, jax.device_put(batch(config),
                                                   sharding.batch_sharding(mesh, 1)))
    return float(total / weight)


def batch(config):
    rng = np.random.default_rng(0)
    B, T, V = config.train.global_batch, config.seq_len, config.model.vocab_size
    ids = rng.integers(0, V, (B, T + 1), dtype=np.int32)
    return {"inputs": ids[:, :-1], "targets": ids[:, 1:],
            "weights": np.ones((B, T), np.float32),
            "segment_ids": np.ones((B, T), np.int32),
            "positions": np.tile(np.arange(T, dtype=np.int32), (B, 1))}


def save(directory, state, step=1, train=CONFIG.train):
    ckpt = Checkpoints(str(directory), train)
    ckpt.save(step, state, data={"step": step}, config={}, meta={})
    ckpt.close()


def host(tree):
    return jax.tree.map(np.asarray, tree)


def assert_bitwise_equal(a, b):
    for x, y in zip(jax.tree.leaves(host(a)), jax.tree.leaves(host(b)), strict=True):
        np.testing.assert_array_equal(x, y, strict=True)


@pytest.fixture(scope="module")
def saved_fsdp8(tmp_path_factory):
    """A trained state saved from an fsdp=8 mesh."""
    config = with_mesh(CONFIG, FSDP8)
    state, loss = trained_state(config)
    directory = tmp_path_factory.mktemp("fsdp8") / "checkpoints"
    save(directory, state)
    return directory, host(state), loss


@pytest.mark.slow
@pytest.mark.parametrize("mesh_cfg,n", [(DATA2_TENSOR2, 4), (ALL3, 8), (FSDP8, 8)])
def test_restore_reshards_onto_the_current_mesh(saved_fsdp8, mesh_cfg, n):
    """Saved with fsdp=8, restored with data=2,tensor=2 on 4 devices (and others): arrays
    bitwise equal, laid out as the new mesh says, and the eval loss agrees."""
    directory, want, want_loss = saved_fsdp8
    config = with_mesh(CONFIG, mesh_cfg)
    mesh, target = target_for(config, n)
    ckpt = Checkpoints(str(directory), config.train)
    got = ckpt.restore(1, target)["state"]
    ckpt.close()
    assert_bitwise_equal(got, want)
    kernel = got.params["decoder"]["layers"]["mlp"]["wi"]["kernel"]
    assert kernel.sharding == target.params["decoder"]["layers"]["mlp"]["wi"]["kernel"].sharding
    assert len(kernel.sharding.device_set) == n

    assert eval_loss(config, mesh, got.params) == pytest.approx(want_loss, rel=1e-5)


def test_changed_model_is_refused_listing_the_paths(saved_fsdp8, monkeypatch):
    """d_ff changed and an untied output head: the error names each path; no array is read."""
    directory, _, _ = saved_fsdp8
    config = with_mesh(CONFIG, FSDP8, d_ff=256, tie_embeddings=False)
    _, target = target_for(config, 8)
    ckpt = Checkpoints(str(directory), config.train)
    monkeypatch.setattr(ckpt.manager, "restore", lambda *a, **k: pytest.fail("restore ran"))
    with pytest.raises(UserError) as e:
        ckpt.restore(1, target)
    msg = str(e.value)
    for path, saved, now in [("wi", "(1, 64, 128)", "(1, 64, 256)"),
                             ("wo", "(1, 128, 64)", "(1, 256, 64)")]:
        assert f"params/decoder/layers/mlp/{path}/kernel: checkpoint {saved} vs model {now}" in msg
    head = [p for p in mismatched_paths(ckpt.saved_tree(1), target) if "not in the checkpoint" in p]
    assert head and all("head" in p for p in head)  # the new untied output projection
    assert "\n" not in msg
    ckpt.manager.close()


def test_nonfinite_state_is_never_saved(tmp_path):
    state = {"params": {"w": jnp.ones(4), "b": jnp.array([0.0, jnp.nan])}, "step": jnp.int32(3)}
    ckpt = Checkpoints(str(tmp_path / "checkpoints"), CONFIG.train)
    with pytest.raises(UserError, match=r"refusing to checkpoint step 3: non-finite values in "
                                        r"params/b"):
        ckpt.save(3, state, data={}, config={}, meta={})
    ckpt.close()
    assert os.listdir(tmp_path / "checkpoints") == []


def test_retention_keeps_last_k_and_every_period(tmp_path):
    """keep_last=2, keep_period=4 over steps 1..9: {8, 9} by recency, {4, 8} by period."""
    train = TrainConfig(keep_last=2, keep_period=4)
    ckpt = Checkpoints(str(tmp_path), train)
    for step in range(1, 10):
        ckpt.save(step, {"x": jnp.full(3, float(step))}, data={}, config={}, meta={})
    ckpt.close()
    assert Checkpoints(str(tmp_path), train).all_steps() == [4, 8, 9]
    assert sorted(os.listdir(tmp_path)) == ["4", "8", "9"]


META = {"versions": {"jax": "1"}, "xla_flags": "", "mesh": {"data": 1, "fsdp": 8, "tensor": 1},
        "devices": 8, "processes": 1, "platform": "cpu",
        "tokenizer": {"hash": "a" * 64, "vocab_size": 263}}


def test_resume_metadata_warns_on_changes_and_refuses_another_tokenizer():
    assert check_resume_metadata(META, META) == []
    now = {**META, "versions": {"jax": "2"}, "mesh": {"data": 2, "fsdp": 4, "tensor": 1}}
    with pytest.warns(ResumeWarning, match="not promised to be bit-identical"):
        diffs = check_resume_metadata(META, now)
    assert [d.split(":")[0] for d in diffs] == ["versions", "mesh"]
    # another tokenizer of the same size is refused as well: same ids, other words
    same_size = {**META, "tokenizer": {"hash": "b" * 64, "vocab_size": 263}}
    with pytest.raises(UserError, match=r"another tokenizer \(263 tokens, hash aaaa"):
        check_resume_metadata(META, same_size)
    other_vocab = {**META, "tokenizer": {"hash": "b" * 64, "vocab_size": 2048}}
    with pytest.raises(UserError, match="than this run's \\(2048 tokens"):
        check_resume_metadata(META, other_vocab)


# ---------------------------------------------------------------------------------------------
# Crashes and bad directories, in real processes.

WORKER = r"""
import json, os, signal, sys
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from scaling.checkpoint.manager import Checkpoints, tmp_dirs
from scaling.config import TrainConfig
from scaling.errors import UserError

directory, mode = sys.argv[1], sys.argv[2]
mesh = jax.make_mesh((8,), ("x",))
sh = NamedSharding(mesh, P("x"))
def values(step):  # step s's array is unique to s (and compresses poorly): a mixed step shows
    return np.arange(8 * 32768, dtype=np.float32).reshape(8, 32768) + step
def state(step):
    return {"w": jax.device_put(values(step), sh), "step": jnp.int32(step)}
target = {"w": jax.ShapeDtypeStruct((8, 32768), jnp.float32, sharding=sh),
          "step": jax.ShapeDtypeStruct((), jnp.int32)}
ckpt = Checkpoints(directory, TrainConfig(keep_last=2))
latest = ckpt.latest_step()
report = {"latest": latest, "tmp_after_open": tmp_dirs(directory), "ok": True}
if latest is not None:
    got = ckpt.restore(latest, target)
    report["ok"] = bool(np.array_equal(np.asarray(got["state"]["w"]), values(latest))
                        and got["data"]["step"] == latest and int(got["state"]["step"]) == latest)
print(json.dumps(report), flush=True)
start = (latest or 0) + 1
if mode == "loop":  # save until killed; each line: a save is in flight, the one before it
    for step in range(start, start + 100000):  # committed (save waits for the previous one)
        ckpt.save(step, state(step), data={"step": step}, config={}, meta={})
        print(json.dumps({"saving": step}), flush=True)
if mode in ("unwritable", "full"):
    ckpt.save(start, state(start), data={"step": start}, config={}, meta={})
    ckpt.wait()
    if mode == "unwritable":
        os.chmod(directory, 0o555)
    else:  # a file-size limit makes every large write fail like a full disk
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        ckpt.save(start + 1, state(start + 1), data={"step": start + 1}, config={}, meta={})
        ckpt.close()
        print(json.dumps({"error": None}), flush=True)
    except UserError as e:
        print(json.dumps({"error": str(e)}), flush=True)
"""


def worker(directory, mode, **kwargs) -> subprocess.Popen:
    """The WORKER script in a new process with 8 CPU devices; stdout is a pipe."""
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=8")
    kwargs.setdefault("stderr", subprocess.PIPE)
    args = [sys.executable, "-c", WORKER, str(directory), mode]
    if mode == "unwritable":
        args = [sys.executable, "-c", DROP_PERMISSION_OVERRIDE] + args
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True, **kwargs)


def committed(directory) -> list[int]:
    return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


@pytest.mark.slow
def test_kill_9_during_async_saves_always_resumes_from_the_last_commit(tmp_path):
    """13 trials: a process saving every step is killed while its k-th save (k random in
    1..4) is in flight; the next one sees exactly the committed steps (the step before the
    killed one, or the killed one if it finished), finds no temporary directory left, and
    restores a complete step (every value equals its step). No sleeps: each kill waits for
    the worker's report that a save has started (a hang guard of 120 s per line)."""
    rng = random.Random(0)
    directory, seen_tmp, in_flight = tmp_path / "checkpoints", 0, None
    for trial in range(13):
        before = committed(directory) if directory.exists() else []
        if in_flight is not None:  # everything before the killed save had committed
            assert before[-1] in (in_flight - 1, in_flight), (trial, before, in_flight)
        seen_tmp += bool(directory.exists() and tmp_dirs(str(directory)))
        proc = worker(directory, "loop", stderr=subprocess.DEVNULL)
        try:
            report = json.loads(read_line(proc, timeout=120))
            assert report == {"latest": before[-1] if before else None, "tmp_after_open": [],
                              "ok": True}, (trial, report)
            first = (before[-1] if before else 0) + 1
            k = rng.randint(1, 4)
            for i in range(k):
                assert json.loads(read_line(proc, timeout=120)) == {"saving": first + i}
            in_flight = first + k - 1
        finally:
            proc.kill()  # SIGKILL: no handler, no cleanup
            proc.wait(timeout=30)
    assert committed(directory)[-1] >= in_flight - 1
    assert seen_tmp >= 1  # some kills did land inside a save (left its temporary directory)


def read_line(proc, timeout: float) -> str:
    """The worker's next stdout line, or a failure (not a hang) after `timeout` seconds."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        pytest.fail(f"worker printed nothing in {timeout} s")
    return proc.stdout.readline()


# Root ignores file modes. This prefix drops CAP_DAC_OVERRIDE (1) and CAP_DAC_READ_SEARCH
# (2) from the bounding set (prctl PR_CAPBSET_DROP = 24) and execs the worker, which then
# obeys them even as root. (Without root the prctl fails and changes nothing.)
DROP_PERMISSION_OVERRIDE = (
    "import ctypes, os, sys; libc = ctypes.CDLL(None); "
    "[libc.prctl(24, cap, 0, 0, 0) for cap in (1, 2)]; os.execv(sys.argv[1], sys.argv[1:])")


@pytest.mark.parametrize("mode", ["unwritable", "full"])
def test_failed_save_is_one_clear_error_and_the_last_commit_survives(tmp_path, mode):
    """An unwritable directory, or a full one (a file-size limit): the failed save is one
    line naming the directory; the step before it stays committed and restorable."""
    directory = tmp_path / "checkpoints"
    proc = worker(directory, mode)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err, err[-3000:]  # orbax's and asyncio's are held back
    lines = [json.loads(line) for line in out.splitlines()]
    message = lines[-1]["error"]
    assert message and "\n" not in message, lines
    assert "saving a checkpoint to" in message and "the last committed step 1 is intact" in message
    os.chmod(directory, 0o755)
    assert committed(directory) == [1]
    report = json.loads(worker(directory, "check").communicate(timeout=120)[0].splitlines()[0])
    assert report == {"latest": 1, "tmp_after_open": [], "ok": True}


NOISE = """
import asyncio, logging, sys, threading
from scaling.checkpoint import noise as checkpoint_noise

loop = asyncio.new_event_loop()
loop.close()

class Transport:  # what asyncio's transports do when finalized after their loop closed
    def __del__(self):
        loop.call_soon(print)

class Unrelated:
    def __del__(self):
        raise ValueError("unrelated finalizer error")

def closed_loop_in_a_thread():
    loop.call_soon(print)

def noise():
    Transport()
    Unrelated()
    worker = threading.Thread(target=closed_loop_in_a_thread)
    worker.start()
    worker.join()
    try:  # what tensorstore's future callbacks do from C: PyErr_Print calls sys.excepthook
        loop.call_soon_threadsafe(print)
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
        # and what asyncio logs for a task that died with its loop
        logging.getLogger("asyncio").error("Task exception was never retrieved",
                                           exc_info=sys.exc_info())

story = sys.argv[1]
if story == "reported":
    checkpoint_noise.note_reported_failure()
if story in ("raced", "committed"):  # the save's machinery prints before its outcome is known
    checkpoint_noise.save_started()
noise()
if story == "raced":
    checkpoint_noise.note_reported_failure()
if story == "committed":
    checkpoint_noise.save_committed()
"""


@pytest.mark.parametrize("story,printed", [("no", 4), ("reported", 0), ("raced", 0),
                                           ("committed", 4)])
def test_save_machinery_noise_is_dropped_for_a_reported_failure_only(story, printed):
    """"Event loop is closed" tracebacks from finalizers, threads, tensorstore's PyErr_Print
    and asyncio's log: dropped after a failed save has been reported, and also when they came
    while the save was in flight and it then failed (they race the report); printed when no
    save failed. An unrelated finalizer error always prints."""
    proc = subprocess.run([sys.executable, "-c", NOISE, story],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "unrelated finalizer error" in proc.stderr
    closed = proc.stderr.count("RuntimeError: Event loop is closed")
    assert closed == printed, proc.stderr


def test_parameters_only_steps_are_not_resumed():
    """`scaling convert` saves parameters without optimizer state: a resume is refused in one
    line that says how to start from them instead."""
    from scaling.checkpoint.compat import check_resumable

    with pytest.raises(UserError, match=r"^run holds imported parameters only \(step 0, "
                                        r"written by `scaling convert`\).*--init_from run$"):
        check_resumable({"params": {}, "step": 0}, "run", 0)
    check_resumable({"params": {}, "opt_state": {}, "step": 0}, "run", 0)  # a training step
