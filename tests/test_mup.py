"""μP coordinate check (Yang et al. 2022 §7, "coord check"): after a few Adam steps the size
of activations does not depend on width under μP, while it grows with width under the
standard parameterization (which shows the check can fail)."""

import functools

import jax
import numpy as np
import pytest

from scaling import sharding
from scaling.bench import synthetic_batch
from scaling.config import Config, MeshConfig, ModelConfig, OptimConfig, TrainConfig
from scaling.models import gpt
from scaling.train.optimizer import make_optimizer
from scaling.train.state import init_state
from scaling.train.step import compile_steps

WIDTHS = (32, 64, 128, 256)
SEEDS = (0, 1, 2)


def coordinates(width: int, mup: bool, steps: int = 3) -> np.ndarray:
    """Mean |x| of the last hidden state and of the logits after `steps` Adam steps, averaged
    over SEEDS (one compiled step per width): [2]."""
    config = Config(
        model=ModelConfig(vocab_size=256, n_layers=2, d_model=width, n_heads=4, d_ff=4 * width,
                          max_len=32, dropout=0.0, attn_dropout=0.0, dtype="float32",
                          mup_base_width=32 if mup else 0),
        mesh=MeshConfig(1, 1, 1),
        optim=OptimConfig(lr=1e-2, warmup_steps=0, weight_decay=0.0, clip_norm=0.0),
        train=TrainConfig(steps=100, global_batch=8))
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:1])
    tx = make_optimizer(config.optim, config.train.steps)
    state, shardings = init_state(config, tx, mesh, jax.random.key(0))
    train_fn, _ = compile_steps(config, tx, mesh, shardings)
    apply = jax.jit(lambda p, x: gpt.GPT(config.model).apply(
        {"params": p}, x, capture_intermediates=True))
    out = []
    for seed in SEEDS:
        state, _ = init_state(config, tx, mesh, jax.random.key(seed))
        batch = synthetic_batch(config, np.random.default_rng(seed))
        for _ in range(steps):
            state, _ = train_fn(state, batch, jax.random.key(1))
        logits, inter = apply(state.params, batch["inputs"])
        hidden = inter["intermediates"]["decoder"]["__call__"][0]  # [B, T, D]
        out.append([float(np.abs(hidden).mean()), float(np.abs(logits).mean())])
    return np.mean(out, axis=0)


@functools.cache
def slopes(mup: bool) -> dict:
    """d log(mean |x|) / d log(width) over WIDTHS, averaged over 3 seeds per width."""
    keys = ("hidden", "logits")
    values = np.array([coordinates(w, mup) for w in WIDTHS])  # [widths, keys]
    fit = np.polyfit(np.log(WIDTHS), np.log(values), 1)[0]  # [keys]
    return dict(zip(keys, fit, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("key", ["hidden", "logits"])
def test_mup_activation_scales_do_not_depend_on_width(key):
    mup, standard = slopes(True)[key], slopes(False)[key]
    print(f"{key}: slope of log|x| vs log width: muP {mup:.2f}, standard {standard:.2f}")
    assert abs(mup) < 0.3
    assert standard > 0.6  # theory: slope 1 for SP logits under Adam, steeper for hidden
