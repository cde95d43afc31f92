"""The train and eval steps: loss, gradients (with accumulation), guarded update.

Letter legend: B batch, M microbatches, T length.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from scaling import sharding
from scaling.config import Config
from scaling.families import batch_fields, build_model, family_of, objective_of
from scaling.models import pipeline
from scaling.platform import resolve
from scaling.train.optimizer import mup_scale_updates, schedule
from scaling.train.state import TrainState


def split_microbatches(batch: dict, M: int) -> dict:
    """[B, ...] -> [M, B/M, ...], microbatch m = rows m, m+M, ... so every device's rows
    contribute to every microbatch and the split needs no communication."""
    def split(x):
        B = x.shape[0]
        return x.reshape(B // M, M, *x.shape[1:]).swapaxes(0, 1)  # [M, B/M, ...]

    return jax.tree.map(split, batch)


def pipeline_microbatches(config: Config) -> int:
    """Microbatches of the GPipe schedule (models/pipeline.py): train.microbatches on a mesh
    with pipeline stages (mesh.stage > 1), else 0 (no pipeline)."""
    return config.train.microbatches if config.mesh.stage > 1 else 0


def _model_and_loss(config: Config, mode: str):
    """(module, loss_fn) for the run's family and objective in `mode`; loss_fn(params, batch,
    rngs) -> LossTerms of sums. `config.model.attention` is already resolved (platform.py)."""
    family, objective = family_of(config.model), objective_of(config)
    model = build_model(config, mode, config.model.attention)

    def loss_fn(params, batch, rngs=None):
        with pipeline.schedule(pipeline_microbatches(config)):
            outputs = model.apply({"params": params}, *family.model_args(batch), rngs=rngs)
        return objective.loss(outputs, batch, config)

    return model, loss_fn


def grads_and_loss(config: Config, params, batch: dict, key: jax.Array, gather=None):
    """Summed loss, summed weight, summed metric (numerator, denominator) pairs and summed
    gradients over all microbatches. With pipeline stages the microbatches flow through the
    stages inside one forward and backward (models/pipeline.py) instead of one after another.

    `gather` (the params' shardings, the same without fsdp) gathers the fsdp-sharded weights
    once for the whole step, forward and backward and every microbatch, and reduce-scatters
    the gradients once (`train.fsdp_gather=step`); without it each layer's weights are
    gathered where they are used, in the forward and again in the backward (ZeRO-3)."""
    if gather is not None:
        params = jax.lax.with_sharding_constraint(params, gather[1])
    total, weight, metrics, grads = _accumulated(config, params, batch, key)
    if gather is not None:
        grads = jax.lax.with_sharding_constraint(grads, gather[0])
    return total, weight, metrics, grads


def _accumulated(config: Config, params, batch: dict, key: jax.Array):
    _, loss_fn = _model_and_loss(config, "train")

    def loss_sum(p, mb, k):
        terms = loss_fn(p, mb, rngs={"dropout": k})
        return terms.total, (terms.weight, terms.metrics)

    grad_fn = jax.value_and_grad(loss_sum, has_aux=True)
    M = config.train.microbatches
    if M == 1 or pipeline_microbatches(config):
        (total, (weight, metrics)), grads = grad_fn(params, batch, key)
        return total, weight, metrics, grads

    def body(carry, xs):
        mb, m = xs
        (t, (w, ms)), g = grad_fn(params, mb, jax.random.fold_in(key, m))
        return jax.tree.map(jnp.add, carry, (t, w, ms, g)), None

    microbatches = split_microbatches(batch, M)  # [M, B/M, ...]
    first = jax.tree.map(lambda x: x[0], microbatches)
    (_, (_, metric_shapes)), _ = jax.eval_shape(grad_fn, params, first, key)
    zeros = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32),
             jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), metric_shapes),
             jax.tree.map(jnp.zeros_like, params))
    (total, weight, metrics, grads), _ = jax.lax.scan(
        body, zeros, (microbatches, jnp.arange(M)))
    return total, weight, metrics, grads


def ratios(metrics: dict) -> dict:
    """name -> numerator / denominator (0 where nothing was counted)."""
    return {k: n / jnp.maximum(d, 1.0) for k, (n, d) in metrics.items()}


def train_step(config: Config, tx: optax.GradientTransformation, state: TrainState,
               batch: dict, base_key: jax.Array, gather=None):
    """One optimizer step. A non-finite loss or gradient leaves params and optimizer state
    unchanged and increments `skipped` (docs/reliability.md test 5). `gather`: see
    grads_and_loss."""
    key = jax.random.fold_in(base_key, state.step)  # dropout depends only on (seed, step)
    total, weight, extra, grads = grads_and_loss(config, state.params, batch, key, gather)
    weight = jnp.maximum(weight, 1.0)
    loss = total / weight
    grads = jax.tree.map(lambda g: g / weight, grads)
    grad_norm = optax.global_norm(grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updates = mup_scale_updates(updates, config.model.width_mult)
    params = optax.apply_updates(state.params, updates)
    ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

    def keep(new, old):
        return jnp.where(ok, new, old)

    new_state = TrainState(
        step=state.step + 1,
        params=jax.tree.map(keep, params, state.params),
        opt_state=jax.tree.map(keep, opt_state, state.opt_state),
        skipped=state.skipped + jnp.where(ok, 0, 1).astype(jnp.int32),
    )
    lr = schedule(config.optim, config.train.steps)(state.step)
    metrics = {"loss": loss, "grad_norm": grad_norm, "lr": lr, "tokens": weight,
               "finite": ok, **ratios(extra)}
    return new_state, metrics


def eval_step(config: Config, params, batch: dict):
    """(summed loss, summed weight, metric sums) on a batch, deterministic (no dropout)."""
    _, loss_fn = _model_and_loss(config, "eval")
    terms = loss_fn(params, batch)
    return terms.total, terms.weight, terms.metrics


def compile_steps(config: Config, tx, mesh, state_shardings):
    """jit the train step (state donated, in/out shardings fixed) and the eval step, for the
    platform of the mesh's devices (`auto` settings resolved against them)."""
    config = resolve(config, mesh.devices.flat)
    batch_sh = sharding.batch_shardings(batch_fields(config), mesh)
    rep = sharding.replicated(mesh)
    gather = None
    if config.train.fsdp_gather == "step" and mesh.shape["fsdp"] > 1:
        gather = (state_shardings.params, sharding.whole_over_fsdp(state_shardings.params))

    def train_fn(state, batch, key):
        with sharding.axis_rules(mesh), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return train_step(config, tx, state, batch, key, gather)

    def eval_fn(params, batch):
        with sharding.axis_rules(mesh), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return eval_step(config, params, batch)

    train = jax.jit(train_fn, in_shardings=(state_shardings, batch_sh, rep),
                    out_shardings=(state_shardings, rep), donate_argnums=0)
    evaluate = jax.jit(eval_fn, in_shardings=(state_shardings.params, batch_sh),
                       out_shardings=rep)
    return train, evaluate
