"""`train.dropout_rng`: the PRNG that draws dropout masks (scaling/rng.py). Without
dropout the choice changes nothing (bitwise); with dropout each generator is deterministic
for a seed, its masks drop about the configured rate, and rbg's masks differ from
threefry's."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling import sharding
from scaling.bench.train import synthetic_batch
from scaling.config import Config, MeshConfig, ModelConfig, OptimConfig, TrainConfig
from scaling.rng import dropout_key
from scaling.train.optimizer import make_optimizer
from scaling.train.state import init_state
from scaling.train.step import grads_and_loss

CONFIG = Config(
    model=ModelConfig(vocab_size=128, n_layers=2, d_model=32, n_heads=4, d_ff=64, max_len=16,
                      dropout=0.0, attn_dropout=0.0),
    optim=OptimConfig(lr=1e-2, warmup_steps=0),
    train=TrainConfig(steps=10, global_batch=8),
    mesh=MeshConfig(1, 8, 1),
)


def _loss(config) -> float:
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:8])
    tx = make_optimizer(config.optim, config.train.steps)
    state, _ = init_state(config, tx, mesh, jax.random.key(0))

    def fn(params, b, key):
        with sharding.axis_rules(), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            total, weight, _, _ = grads_and_loss(config, params, b, key)
        return total / weight

    b = jax.device_put(synthetic_batch(config, np.random.default_rng(0)),
                       sharding.batch_sharding(mesh, 1))
    return float(jax.jit(fn)(state.params, b, jax.random.fold_in(dropout_key(config.train), 3)))


def _with(rng: str, dropout: float) -> Config:
    model = dataclasses.replace(CONFIG.model, dropout=dropout, attn_dropout=dropout)
    return dataclasses.replace(CONFIG, model=model,
                               train=dataclasses.replace(CONFIG.train, dropout_rng=rng))


@pytest.mark.slow
def test_without_dropout_the_generator_changes_nothing():
    assert _loss(_with("rbg", 0.0)) == _loss(_with("threefry", 0.0))


@pytest.mark.slow
def test_with_dropout_each_generator_is_deterministic_and_they_differ():
    rbg, threefry = _loss(_with("rbg", 0.3)), _loss(_with("threefry", 0.3))
    assert rbg == _loss(_with("rbg", 0.3))
    assert np.isfinite(rbg) and np.isfinite(threefry) and rbg != threefry


@pytest.mark.parametrize("rng", ["threefry", "rbg", "unsafe_rbg"])
def test_masks_keep_about_one_minus_the_rate(rng):
    key = dropout_key(dataclasses.replace(CONFIG.train, dropout_rng=rng))
    keep = jax.random.bernoulli(jax.random.fold_in(key, 7), 0.7, (200_000,))
    assert abs(float(jnp.mean(keep)) - 0.7) < 0.005  # 5 standard errors (0.001 each)


def test_rbg_on_tpu_asks_the_partitioner_for_local_masks(monkeypatch):
    """TPU only, rbg only; the training path passes it through LIBTPU_INIT_ARGS once."""
    from scaling.rng import compiler_options, set_tpu_flags

    rbg = dataclasses.replace(CONFIG.train, dropout_rng="rbg")
    assert compiler_options(rbg, "tpu") == {"xla_tpu_spmd_rng_bit_generator_unsafe": True}
    assert compiler_options(rbg, "cpu") == {} == compiler_options(CONFIG.train, "tpu")
    monkeypatch.setenv("LIBTPU_INIT_ARGS", "--xla_other=1")
    set_tpu_flags(rbg)
    set_tpu_flags(rbg)
    set_tpu_flags(CONFIG.train)
    import os

    assert os.environ["LIBTPU_INIT_ARGS"] == \
        "--xla_other=1 --xla_tpu_spmd_rng_bit_generator_unsafe=true"
