"""Pipeline parallelism over a scanned stack: GPipe's fill-drain schedule (Huang et al. 2019,
"GPipe", §2.2-2.3), written with `jax.shard_map` over the mesh's stage axis and
`jax.lax.ppermute` between neighbouring stages.

Letter legend: M microbatches, S stages, L layers of the stack, K = L / S layers of one
stage, B rows of one microbatch, T length, D model width.

The stacked layer parameters [L, ...] are split over the stage axis on L (sharding.rules),
so stage s holds layers s·K .. (s+1)·K - 1: the same arrays, in the same checkpoint layout, a
non-pipelined mesh holds. A step runs M + S - 1 ticks; at tick i stage s applies its K
layers to microbatch i - s, which stage 0 reads from the input and every other stage
receives from stage s - 1 (one ppermute per tick). Ticks where i - s lies outside 0..M-1
are the bubble: the stage computes on a placeholder and the result is dropped, so a
fraction (S - 1) / (M + S - 1) of each stage's time is idle (accounting.bubble_fraction).
Differentiating the schedule gives the mirrored backward (drain, then fill) with the
transposed ppermutes; gradients of each stage's layers stay on that stage.

Only the stage axis is manual inside the shard_map (partial-manual mode); replica, data,
fsdp and tensor stay automatic, so a stage's layers are sharded exactly as the plain stack's.

Which calls pipeline: the train and eval steps set `schedule(microbatches)` while the model
is traced (scaling/train/step.py); everything else (initialization, decoding, scoring) runs
the plain scan, which is correct on a stage-split stack, only not pipelined.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

STAGE_AXIS = "stage"  # the mesh axis (scaling/sharding.py places it)

_MICROBATCHES: contextvars.ContextVar[int] = contextvars.ContextVar("pipeline_microbatches",
                                                                    default=0)


@dataclass(frozen=True)
class Pipeline:
    """A GPipe schedule: `stages` from the mesh, `microbatches` from train.microbatches."""

    stages: int
    microbatches: int


@contextlib.contextmanager
def schedule(microbatches: int):
    """While tracing inside this context on a mesh with a stage axis, scanned stacks run as a
    pipeline of `microbatches` microbatches (0: no pipelining)."""
    token = _MICROBATCHES.set(microbatches)
    try:
        yield
    finally:
        _MICROBATCHES.reset(token)


def active() -> Pipeline | None:
    """The schedule in force: the context's microbatch count and the current (abstract)
    mesh's stage axis; None when either is absent."""
    M = _MICROBATCHES.get()
    mesh = jax.sharding.get_abstract_mesh()
    S = dict(mesh.shape).get(STAGE_AXIS, 1) if mesh is not None and mesh.shape else 1
    return Pipeline(S, M) if M > 0 and S > 1 else None


def split_rows(x: jax.Array, M: int) -> jax.Array:
    """[M·B, ...] -> [M, B, ...], microbatch m = rows m, m+M, ... (as the step's gradient
    accumulation splits them), so every device's rows feed every microbatch and the split
    needs no communication."""
    return x.reshape(x.shape[0] // M, M, *x.shape[1:]).swapaxes(0, 1)


def join_rows(x: jax.Array) -> jax.Array:
    """The inverse of `split_rows`: [M, B, ...] -> [M·B, ...]."""
    return x.swapaxes(0, 1).reshape(x.shape[0] * x.shape[1], *x.shape[2:])


def gpipe(stage_fn: Callable, layers, x: jax.Array, rows, shared, key: jax.Array,
          pipe: Pipeline) -> jax.Array:
    """x [M·B, T, D] through all S stages: stage_fn(layers_of_stage, x [B, T, D],
    rows_of_microbatch, shared, key) -> [B, T, D] applies one stage's K layers.

    `layers`: arrays with a leading [L] axis (split over stages); `rows`: arrays with a
    leading [M·B] axis (split into microbatches like x, e.g. per-row masks); `shared`: arrays
    every microbatch uses whole. The key is folded with (microbatch, stage), so dropout never
    repeats across microbatches or stages and does not depend on the tick.
    """
    S, M = pipe.stages, pipe.microbatches
    xs = split_rows(x, M)  # [M, B, T, D]
    rows = jax.tree.map(lambda a: split_rows(a, M), rows)  # [M, B, ...]
    forward = [(s, s + 1) for s in range(S - 1)]  # stage s sends to s + 1; stage 0 gets zeros

    def per_stage(layers, xs, rows, shared, key):
        stage = jax.lax.axis_index(STAGE_AXIS)

        def tick(state, i):
            m = jnp.clip(i - stage, 0, M - 1)  # the microbatch this stage works on
            inputs = jnp.where(stage == 0, xs[jnp.minimum(i, M - 1)], state)  # [B, T, D]
            mb_rows = jax.tree.map(lambda a: a[m], rows)
            k = jax.random.fold_in(jax.random.fold_in(key, m), stage)
            y = stage_fn(layers, inputs, mb_rows, shared, k)  # [B, T, D]
            return jax.lax.ppermute(y, STAGE_AXIS, forward), y

        state = jax.lax.pcast(jnp.zeros_like(xs[0]), STAGE_AXIS, to="varying")  # [B, T, D]
        _, ys = jax.lax.scan(tick, state, jnp.arange(M + S - 1))  # [M + S - 1, B, T, D]
        # the last stage finished microbatch m at tick m + S - 1; give its outputs to all
        done = jnp.where(stage == S - 1, ys[S - 1:], jnp.zeros_like(ys[S - 1:]))  # [M, B, T, D]
        return jax.lax.psum(done, STAGE_AXIS)

    P = PartitionSpec
    out = jax.shard_map(per_stage, mesh=jax.sharding.get_abstract_mesh(),
                        in_specs=(P(STAGE_AXIS), P(), P(), P(), P()), out_specs=P(),
                        axis_names={STAGE_AXIS})(layers, xs, rows, shared, key)
    return join_rows(out)  # [M·B, T, D]
