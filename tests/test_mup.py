"""μP coordinate check (Yang et al. 2022 §7, "coord check"): after a few Adam steps the size
of activations does not depend on width under μP, while it grows with width under the
standard parameterization (which shows the check can fail)."""

import functools

import jax
import numpy as np
import optax
import pytest

from scaling import sharding
from scaling.bench.train import synthetic_batch
from scaling.config import Config, MeshConfig, ModelConfig, OptimConfig, TrainConfig
from scaling.models import gpt
from scaling.schedules import schedule
from scaling.train.optimizer import hidden_lr, make_optimizer, mup_scale_updates
from scaling.train.state import abstract_state, init_state
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


def _tiny(width: int, base: int) -> Config:
    return Config(
        model=ModelConfig(vocab_size=256, n_layers=1, d_model=width, n_heads=2, d_ff=2 * width,
                          max_len=16, dropout=0.0, attn_dropout=0.0, dtype="float32",
                          mup_base_width=base),
        mesh=MeshConfig(1, 1, 1),
        optim=OptimConfig(lr=1e-2, warmup_steps=0, weight_decay=0.0, clip_norm=0.0),
        train=TrainConfig(steps=10, global_batch=4))


def _ratios(before, after, lr: float) -> dict[str, float]:
    """Median |Δparam| / lr per kind of parameter: hidden matrices, token tables, vectors."""
    ratios: dict[str, list] = {"hidden": [], "embedding": [], "vector": []}
    flat = jax.tree_util.tree_flatten_with_path(before)[0]
    for (path, old), new in zip(flat, jax.tree.leaves(after), strict=True):
        keys = [getattr(p, "key", "") for p in path]
        step = np.abs(np.asarray(new) - np.asarray(old)).ravel() / lr
        step = step[step > 0]  # rows never seen by the batch get no gradient
        kind = ("hidden" if keys[-1] == "kernel" and "lm_head" not in keys
                else "embedding" if keys[-1] == "embedding" else "vector")  # fmt: skip
        ratios[kind].append(step)
    return {k: float(np.median(np.concatenate(v))) for k, v in ratios.items() if v}


def first_step_update_sizes(width: int, base: int, train_step: bool) -> dict[str, float]:
    """Median |Δparam| / lr over one Adam step from init, per kind of parameter. Adam's first
    update is lr · g / (|g| + eps) = ±lr per coordinate (no clipping, no weight decay), so any
    other ratio is the per-parameter scaling of the rate. `train_step`: through the compiled
    training step; else the optimizer and μP scaling alone, on random gradients."""
    config = _tiny(width, base)
    tx = make_optimizer(config.optim, config.train.steps)
    lr = float(schedule(config.optim, config.train.steps)(0))
    if train_step:
        mesh = sharding.make_mesh(config.mesh, jax.devices()[:1])
        state, shardings = init_state(config, tx, mesh, jax.random.key(0))
        before = jax.device_get(state.params)
        train_fn, _ = compile_steps(config, tx, mesh, shardings)
        state, metrics = train_fn(state, synthetic_batch(config, np.random.default_rng(0)),
                                  jax.random.key(1))
        assert float(metrics["lr"]) == pytest.approx(lr)
        return _ratios(before, jax.device_get(state.params), lr)
    # The model's parameter tree (names, shapes) without running it; random values and grads.
    rng = np.random.default_rng(0)
    shapes = abstract_state(config, tx).params
    before = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(np.float32), shapes)
    grads = jax.tree.map(lambda a: rng.standard_normal(a.shape).astype(np.float32), shapes)

    @jax.jit
    def update(params, grads):
        updates, _ = tx.update(grads, tx.init(params), params)
        return optax.apply_updates(params, mup_scale_updates(updates, config.model.width_mult))

    return _ratios(before, jax.device_get(update(before, grads)), lr)


def _check_rule(sizes: dict, width: int, base: int) -> None:
    assert sizes["hidden"] == pytest.approx(base / width, rel=1e-3)
    assert sizes["hidden"] == pytest.approx(
        hidden_lr(1.0, ModelConfig(d_model=width, mup_base_width=base).width_mult), rel=1e-3)
    assert sizes["embedding"] == pytest.approx(1.0, rel=1e-3)
    assert sizes["vector"] == pytest.approx(1.0, rel=1e-3)


@pytest.mark.parametrize("width, base", [(32, 64), (128, 64), (128, 0)])
def test_mup_learning_rate_rule_matches_its_formula(width, base):
    """Hidden matrices learn at lr · base / width (Yang et al. 2022, Table 3, Adam); token
    tables, biases and norms at lr; everything at lr without μP (base 0)."""
    _check_rule(first_step_update_sizes(width, base, train_step=False), width,
                base or width)  # fmt: skip


@pytest.mark.slow
def test_mup_learning_rate_rule_holds_in_the_train_step():
    _check_rule(first_step_update_sizes(128, 64, train_step=True), 128, 64)
