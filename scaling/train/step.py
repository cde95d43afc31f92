"""The train and eval steps: loss, gradients (with accumulation), guarded update.

Letter legend: B batch, M microbatches, T length.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from scaling import sharding
from scaling.config import Config
from scaling.models import family
from scaling.train.optimizer import mup_scale_updates, schedule
from scaling.train.state import TrainState


def split_microbatches(batch: dict, M: int) -> dict:
    """[B, ...] -> [M, B/M, ...], microbatch m = rows m, m+M, ... so every device's rows
    contribute to every microbatch and the split needs no communication."""
    def split(x):
        B = x.shape[0]
        return x.reshape(B // M, M, *x.shape[1:]).swapaxes(0, 1)  # [M, B/M, ...]

    return jax.tree.map(split, batch)


def attention_impl(config: Config) -> str:
    """`auto` picks cuDNN's fused kernel on GPU and the XLA path elsewhere."""
    impl = config.model.attention
    if impl == "auto":
        return "cudnn" if jax.default_backend() == "gpu" else "xla"
    return impl


def grads_and_loss(config: Config, params, batch: dict, key: jax.Array):
    """Summed loss, summed weight and summed gradients over all microbatches."""
    fam = family(config.model)
    model = fam.make_model(config.model, deterministic=False, implementation=attention_impl(config))

    def loss_sum(p, mb, k):
        return fam.loss_terms(model, p, mb, rngs={"dropout": k}, z_loss=config.optim.z_loss)

    grad_fn = jax.value_and_grad(loss_sum, has_aux=True)
    M = config.train.microbatches
    if M == 1:
        (total, weight), grads = grad_fn(params, batch, key)
        return total, weight, grads

    def body(carry, xs):
        mb, m = xs
        (t, w), g = grad_fn(params, mb, jax.random.fold_in(key, m))
        return jax.tree.map(jnp.add, carry, (t, w, g)), None

    zeros = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32),
             jax.tree.map(jnp.zeros_like, params))
    (total, weight, grads), _ = jax.lax.scan(
        body, zeros, (split_microbatches(batch, M), jnp.arange(M)))
    return total, weight, grads


def train_step(config: Config, tx: optax.GradientTransformation, state: TrainState,
               batch: dict, base_key: jax.Array):
    """One optimizer step. A non-finite loss or gradient leaves params and optimizer state
    unchanged and increments `skipped` (RELIABILITY.md test 5)."""
    key = jax.random.fold_in(base_key, state.step)  # dropout depends only on (seed, step)
    total, weight, grads = grads_and_loss(config, state.params, batch, key)
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
               "finite": ok}
    return new_state, metrics


def eval_step(config: Config, params, batch: dict):
    """(summed loss, summed weight) on a batch, deterministic (no dropout)."""
    fam = family(config.model)
    model = fam.make_model(config.model, implementation=attention_impl(config))
    return fam.loss_terms(model, params, batch)


def compile_steps(config: Config, tx, mesh, state_shardings):
    """jit the train step (state donated, in/out shardings fixed) and the eval step."""
    batch_sh = sharding.batch_sharding(mesh, 1)
    rep = sharding.replicated(mesh)

    def train_fn(state, batch, key):
        with sharding.axis_rules(), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return train_step(config, tx, state, batch, key)

    def eval_fn(params, batch):
        with sharding.axis_rules(), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return eval_step(config, params, batch)

    train = jax.jit(train_fn, in_shardings=(state_shardings, batch_sh, rep),
                    out_shardings=(state_shardings, rep), donate_argnums=0)
    evaluate = jax.jit(eval_fn, in_shardings=(state_shardings.params, batch_sh),
                       out_shardings=rep)
    return train, evaluate
