"""Pipeline parallelism (mesh.stage > 1, scaling/models/pipeline.py): pipelined meshes, with
microbatches and remat inside the stages, give the single-device loss and gradients of the
plain full-batch step; a pipelined run resumes bitwise and its checkpoint restores onto a
non-pipelined mesh; impossible settings end in one line and exit 2.

Oracles: the plain step on one device (no pipeline, no accumulation, no remat), an
uninterrupted run, the hand-counted GPipe bubble (S - 1) / (M + S - 1)."""

import dataclasses
import functools
import json
import re

import jax
import numpy as np
import pytest

from scaling import sharding
from scaling.accounting import bubble_fraction
from scaling.bench.train import synthetic_batch
from scaling.checkpoint.manager import Checkpoints, checkpoint_dir
from scaling.cli import main
from scaling.config import (
    Config,
    ConfigError,
    MeshConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    apply_overrides,
)
from scaling.train.optimizer import make_optimizer
from scaling.train.report import pipeline_report
from scaling.train.state import init_state, sharded_abstract_state, state_shardings
from scaling.train.step import compile_steps, grads_and_loss
from scaling.validate import validate

# 4 layers, GPT-3's alternating dense / banded layers (so each stage gets its own bands)
CONFIG = Config(
    model=ModelConfig(vocab_size=128, n_layers=4, d_model=32, n_heads=4, d_ff=64, max_len=16,
                      dropout=0.0, attn_dropout=0.0, local_window=4),
    optim=OptimConfig(lr=1e-2, warmup_steps=0),
    train=TrainConfig(steps=10, global_batch=32, microbatches=4),
)
PLAIN = dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, microbatches=1),
                            mesh=MeshConfig(1, 1, 1))
# mesh, and the remat policy each stage runs under (GPipe §2.3 recomputes a stage's forward)
LAYOUTS = {
    "stage2_data2_tensor2": (MeshConfig(data=2, fsdp=1, tensor=2, stage=2), "full"),
    "stage4_fsdp2": (MeshConfig(data=1, fsdp=2, tensor=1, stage=4), "none"),
    "stage2_replica2_fsdp2": (MeshConfig(data=1, fsdp=2, tensor=1, replica=2, stage=2), "dots"),
}


def batch(config):
    b = synthetic_batch(config, np.random.default_rng(0))
    b["weights"][:, -3:] = 0.0  # some ignored positions, so the weighting matters
    b["segment_ids"][::3, 10:] = 2  # some rows hold two documents: per-row masks per microbatch
    return b


def setup(config, n_devices):
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:n_devices], config=config)
    tx = make_optimizer(config.optim, config.train.steps)
    state, shardings = init_state(config, tx, mesh, jax.random.key(0))
    return mesh, tx, state, shardings


def loss_and_grads(config, n_devices):
    """(loss, gradients, state, lowered text) of one forward and backward on `config`'s mesh."""
    mesh, _, state, _ = setup(config, n_devices)

    def fn(params, b):
        with sharding.axis_rules(mesh), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            total, weight, _, grads = grads_and_loss(config, params, b, jax.random.key(1))
        return total / weight, jax.tree.map(lambda g: g / weight, grads)

    b = jax.device_put(batch(config), sharding.batch_sharding(mesh, 1))
    jitted = jax.jit(fn)
    loss, grads = jitted(state.params, b)
    return float(loss), jax.device_get(grads), state, jitted.lower(state.params, b).as_text()


@functools.cache
def single_device():
    """The plain step on one device: the reference every pipelined layout must reproduce."""
    loss, grads, _, _ = loss_and_grads(PLAIN, 1)
    return loss, grads


def layer_kernel(params):
    return params["decoder"]["layers"]["mlp"]["wi"]["kernel"]  # [L, D, F]


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_pipelined_layout_matches_single_device(layout):
    """4 microbatches through the stages, each stage under its remat policy: the loss and
    every gradient of the plain full-batch step on one device."""
    ref_loss, ref_grads = single_device()
    mesh_cfg, remat = LAYOUTS[layout]
    config = dataclasses.replace(CONFIG, mesh=mesh_cfg,
                                 model=dataclasses.replace(CONFIG.model, remat=remat))
    loss, grads, state, lowered = loss_and_grads(config, 8)
    S = config.mesh.stage
    kernel = layer_kernel(state.params)
    assert kernel.sharding.spec[0] == "stage"  # each stage holds L / S consecutive layers
    assert kernel.addressable_shards[0].data.shape[0] == config.model.n_layers // S
    assert "collective_permute" in lowered  # activations move stage to stage
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 grads, ref_grads)


def test_bubble_fraction_is_gpipes():
    assert bubble_fraction(1, 8) == 0.0
    assert bubble_fraction(4, 12) == pytest.approx(3 / 15)  # 15 ticks, each stage works 12
    assert bubble_fraction(8, 1) == pytest.approx(7 / 8)
    line = pipeline_report(apply_overrides(CONFIG, ["mesh.stage=4", "train.microbatches=2"]))
    assert "bubble 60%" in line and "train.microbatches >= 16" in line


@pytest.mark.parametrize("sets,needle", [
    (["mesh.stage=3"], "does not divide model.n_layers=4"),
    (["mesh.stage=0"], "mesh.stage=0"),
    (["mesh.stage=2", "model.scan_layers=false"], "model.scan_layers=true"),
])
def test_impossible_pipelines_are_refused(sets, needle, capsys):
    with pytest.raises(ConfigError, match=needle):
        validate(apply_overrides(CONFIG, sets))
    args = [a for s in sets for a in ("--set", s)]
    assert main(["bench", "compile", "--config", "gpt-tiny", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(needle, err), err


def test_a_family_that_does_not_pipeline_is_refused(capsys):
    assert main(["bench", "compile", "--config", "bert-tiny", "--set", "mesh.stage=2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bert family does not run as pipeline stages" in err


# ---------------------------------------------------------------------------------------------
# A pipelined run through the command line: exact resume, restore onto a plain mesh.

RUN_SETS = [
    "data.tokenizer=byte", "model.vocab_size=384", "model.n_layers=4", "model.d_model=32",
    "model.n_heads=4", "model.d_ff=64", "model.max_len=16", "model.dropout=0.1",
    "model.attn_dropout=0.1", "model.remat=full", "mesh.stage=2", "mesh.data=2", "mesh.fsdp=2",
    "mesh.tensor=1", "train.global_batch=32", "train.microbatches=4", "train.steps=6",
    "train.checkpoint_every=3", "train.log_every=1", "train.eval_every=1000",
    "train.eval_batches=1", "optim.warmup_steps=2",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """6 pipelined steps straight, and 3 + 3 with a stop and a resume (dropout, remat and
    4 microbatches on)."""
    root = tmp_path_factory.mktemp("pipeline")
    for i in range(4):
        (root / f"doc{i}.txt").write_text(" ".join(f"w{(i * 7 + j) % 23}" for j in range(600)),
                                         encoding="utf-8")
    sets = RUN_SETS + [f"data.source=text:{root}/doc*.txt", f"data.cache_dir={root / 'cache'}"]

    def train(workdir, *extra):
        args = ["train", "--config", "gpt-tiny", "--quiet", "--workdir", str(workdir)]
        code = main(args + [a for s in sets for a in ("--set", s)] + list(extra))
        assert code == 0

    train(root / "straight")
    train(root / "resumed", "--stop_at", "3")
    train(root / "resumed")
    return root


def metrics(workdir) -> dict[int, float]:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def saved(workdir, step=6):
    ckpt = Checkpoints(checkpoint_dir(str(workdir)), read_only=True)
    state = ckpt.restore_numpy(step)
    ckpt.manager.close()
    return state


@pytest.mark.slow
def test_pipelined_run_resumes_bitwise(runs):
    want, got = metrics(runs / "straight"), metrics(runs / "resumed")
    assert sorted(got) == list(range(1, 7)) and got == want  # exact, step by step
    a, b = saved(runs / "straight"), saved(runs / "resumed")
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y, strict=True)
    summary = json.loads((runs / "straight" / "summary.json").read_text())
    assert summary["pipeline_bubble"] == pytest.approx(1 / 5)  # (2 - 1) / (4 + 2 - 1)


@pytest.mark.slow
def test_pipelined_checkpoint_restores_onto_a_plain_mesh(runs):
    """The stage-split layers are the same [L, ...] arrays: restored onto fsdp=4 x tensor=2
    without a stage axis they are bitwise the saved ones, and both meshes give the same eval
    loss."""
    config = json.loads((runs / "straight" / "config.json").read_text())
    from scaling.config import from_dict

    piped = from_dict(config)
    plain = dataclasses.replace(piped, mesh=MeshConfig(data=1, fsdp=4, tensor=2))
    mesh = sharding.make_mesh(plain.mesh, config=plain)
    tx = make_optimizer(plain.optim, plain.train.steps)
    target, _ = sharded_abstract_state(plain, tx, mesh)
    ckpt = Checkpoints(checkpoint_dir(str(runs / "straight")), plain.train)
    got = ckpt.restore(6, target)["state"]
    ckpt.close()
    want = saved(runs / "straight")
    kernel = layer_kernel(got.params)
    assert "stage" not in mesh.axis_names and kernel.sharding.spec[0] is None
    np.testing.assert_array_equal(np.asarray(kernel), layer_kernel(want["params"]), strict=True)
    for x, y in zip(jax.tree.leaves(got.params), jax.tree.leaves(want["params"]), strict=True):
        np.testing.assert_array_equal(np.asarray(x), y, strict=True)

    def eval_loss(config):
        m = sharding.make_mesh(config.mesh, config=config)
        t = make_optimizer(config.optim, config.train.steps)
        shardings = state_shardings(config, t, m)
        _, eval_fn = compile_steps(config, t, m, shardings)
        params = jax.device_put(got.params, shardings.params)
        b = jax.device_put(batch(config), sharding.batch_sharding(m, 1))
        total, weight, _ = eval_fn(params, b)
        return float(total / weight)

    assert eval_loss(plain) == pytest.approx(eval_loss(piped), rel=1e-5)


@dataclasses.dataclass(frozen=True)
class FakeDevice:
    id: int
    process_index: int


@pytest.mark.parametrize("axes,shape,want", [
    # 2 hosts x 4 devices. Stages across hosts: both hosts hold every row, so both load all.
    (("replica", "stage", "data", "fsdp", "tensor"), (1, 2, 1, 4, 1), [(0, 1), (0, 1)]),
    # data across hosts: each loads its half (what jax.process_index/count gave before)
    (("replica", "data", "fsdp", "tensor"), (1, 2, 4, 1), [(0, 2), (1, 2)]),
    (("replica", "stage", "data", "fsdp", "tensor"), (2, 1, 1, 2, 2), [(0, 2), (1, 2)]),
])
def test_each_host_loads_the_rows_its_devices_hold(axes, shape, want):
    from types import SimpleNamespace

    devices = np.array([FakeDevice(i, i // 4) for i in range(8)]).reshape(shape)
    mesh = SimpleNamespace(axis_names=axes, devices=devices)
    assert [sharding.batch_share(mesh, p) for p in (0, 1)] == want
