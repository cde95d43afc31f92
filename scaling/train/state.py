"""The train state and its sharded initialization (never built unsharded)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import struct

from scaling import sharding
from scaling.config import Config
from scaling.params import init_params


@struct.dataclass
class TrainState:
    """Everything that changes during training. `skipped` counts non-finite updates dropped."""

    step: jax.Array
    params: dict
    opt_state: optax.OptState
    skipped: jax.Array


def _init_boxed(config: Config, tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
    """Initialize with logical-partitioning boxes still on the leaves."""
    params = init_params(config, rng)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      skipped=jnp.zeros((), jnp.int32))


def state_shardings(config: Config, tx: optax.GradientTransformation, mesh):
    """Shardings of the train state, from `jax.eval_shape` of the init (nothing allocated)."""
    with sharding.axis_rules():
        abstract = jax.eval_shape(lambda r: _init_boxed(config, tx, r), jax.random.key(0))
    return sharding.logical_shardings(abstract, mesh)


def abstract_state(config: Config, tx: optax.GradientTransformation) -> TrainState:
    """ShapeDtypeStructs of the unboxed state (for parameter counts and restore targets)."""
    return jax.eval_shape(lambda r: nn.unbox(_init_boxed(config, tx, r)), jax.random.key(0))


def sharded_abstract_state(config: Config, tx: optax.GradientTransformation, mesh):
    """(target, shardings): the state's ShapeDtypeStructs carrying their shardings on `mesh`,
    for restoring onto the current mesh and for ahead-of-time compilation."""
    shardings = state_shardings(config, tx, mesh)
    target = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract_state(config, tx), shardings)
    return target, shardings


def init_state(config: Config, tx: optax.GradientTransformation, mesh, rng: jax.Array,
               shardings=None):
    """Create the state directly in its sharded layout: jit the init with out_shardings
    (`shardings` from `state_shardings`, computed here when not given)."""
    shardings = shardings or state_shardings(config, tx, mesh)
    init = jax.jit(lambda r: nn.unbox(_init_boxed(config, tx, r)), out_shardings=shardings)
    with sharding.axis_rules():
        return init(rng), shardings
