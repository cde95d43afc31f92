"""Data-, FSDP-, tensor- and multi-slice (replica) layouts give the single-device loss and
gradients; gradient accumulation gives the full-batch step; the train step compiles once."""

import dataclasses
import functools

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding

from scaling import sharding
from scaling.bench.train import synthetic_batch
from scaling.config import Config, MeshConfig, ModelConfig, OptimConfig, TrainConfig
from scaling.train.optimizer import make_optimizer
from scaling.train.state import init_state
from scaling.train.step import compile_steps, grads_and_loss

CONFIG = Config(
    model=ModelConfig(vocab_size=128, n_layers=2, d_model=32, n_heads=8, d_ff=64, max_len=16,
                      dropout=0.0, attn_dropout=0.0, local_window=4),
    optim=OptimConfig(lr=1e-2, warmup_steps=0),
    train=TrainConfig(steps=10, global_batch=8),
)
LAYOUTS = {
    "single": (MeshConfig(1, 1, 1), 1),
    "data": (MeshConfig(8, 1, 1), 8),
    "fsdp": (MeshConfig(1, 8, 1), 8),
    "tensor": (MeshConfig(1, 1, 8), 8),
    "data2_fsdp2_tensor2": (MeshConfig(2, 2, 2), 8),
    "replica2_fsdp2_tensor2": (MeshConfig(1, 2, 2, replica=2), 8),  # two "slices"
}


def batch(config):
    b = synthetic_batch(config, np.random.default_rng(0))
    b["weights"][:, -3:] = 0.0  # some ignored positions, so the weighting matters
    return b


def loss_and_grads(config, layout, gather_once=False):
    mesh_cfg, n = LAYOUTS[layout]
    config = dataclasses.replace(config, mesh=mesh_cfg)
    mesh = sharding.make_mesh(mesh_cfg, jax.devices()[:n])
    tx = make_optimizer(config.optim, config.train.steps)
    state, shardings = init_state(config, tx, mesh, jax.random.key(0))
    gather = None  # train.fsdp_gather=layer; else =step: whole weights once a step
    if gather_once:
        gather = (shardings.params, sharding.whole_over_fsdp(shardings.params))

    def fn(params, b):
        with sharding.axis_rules(), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            total, weight, _, grads = grads_and_loss(config, params, b, jax.random.key(1),
                                                     gather)
        return total / weight, jax.tree.map(lambda g: g / weight, grads)

    b = jax.device_put(batch(config), sharding.batch_sharding(mesh, 1))
    loss, grads = jax.jit(fn)(state.params, b)
    return float(loss), jax.device_get(grads), state


@functools.cache
def single_device():
    """(loss, gradients) on one device: the reference every layout must reproduce."""
    loss, grads, _ = loss_and_grads(CONFIG, "single")
    return loss, grads


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["data", "fsdp", "tensor", "data2_fsdp2_tensor2",
                                    "replica2_fsdp2_tensor2"])
def test_layout_matches_single_device(layout):
    ref_loss, ref_grads = single_device()
    loss, grads, state = loss_and_grads(CONFIG, layout)
    if layout != "data":  # the layout really splits the weights
        kernel = state.params["decoder"]["layers"]["mlp"]["wi"]["kernel"]
        assert len(kernel.sharding.device_set) == 8
        assert kernel.addressable_shards[0].data.size < kernel.size
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 grads, ref_grads)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["fsdp", "data2_fsdp2_tensor2", "replica2_fsdp2_tensor2"])
def test_weights_gathered_once_a_step_match_single_device(layout):
    """train.fsdp_gather=step (weights whole once a step): the same loss and gradients."""
    ref_loss, ref_grads = single_device()
    loss, grads, _ = loss_and_grads(CONFIG, layout, gather_once=True)
    assert loss == pytest.approx(ref_loss, rel=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                 grads, ref_grads)


def test_whole_over_fsdp_drops_only_the_fsdp_axis():
    mesh = sharding.make_mesh(MeshConfig(1, 2, 2, replica=2), jax.devices()[:8])
    P = jax.sharding.PartitionSpec
    tree = {"a": NamedSharding(mesh, P("fsdp", "tensor")), "b": NamedSharding(mesh, P()),
            "c": NamedSharding(mesh, P(("replica", "fsdp"), None))}
    got = sharding.whole_over_fsdp(tree)
    assert [got[k].spec for k in "abc"] == [P(None, "tensor"), P(), P("replica", None)]


@pytest.mark.slow
def test_gradient_accumulation_matches_full_batch():
    ref_loss, ref_grads, _ = loss_and_grads(CONFIG, "data2_fsdp2_tensor2")
    accum = dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, microbatches=4))
    for gather_once in (False, True):
        loss, grads, _ = loss_and_grads(accum, "data2_fsdp2_tensor2", gather_once)
        assert loss == pytest.approx(ref_loss, rel=1e-6)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                     grads, ref_grads)


@pytest.mark.slow
def test_train_step_compiles_once_and_learns():
    config = dataclasses.replace(CONFIG, mesh=MeshConfig(2, 2, 2))
    mesh = sharding.make_mesh(config.mesh)
    tx = make_optimizer(config.optim, config.train.steps)
    state, shardings = init_state(config, tx, mesh, jax.random.key(0))
    train_fn, _ = compile_steps(config, tx, mesh, shardings)
    b = jax.device_put(batch(config), sharding.batch_sharding(mesh, 1))
    losses = []
    for _ in range(6):
        state, m = train_fn(state, b, jax.random.key(1))
        losses.append(float(m["loss"]))
    assert train_fn._cache_size() == 1
    assert int(state.step) == 6 and int(state.skipped) == 0
    assert losses[-1] < losses[0]  # memorizing one batch
    # the donated state keeps its declared layout
    kernel = state.params["decoder"]["layers"]["mlp"]["wi"]["kernel"]
    assert kernel.sharding.spec == shardings.params["decoder"]["layers"]["mlp"]["wi"]["kernel"].spec
