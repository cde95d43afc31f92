"""Pipeline parallelism over a scanned stack: GPipe's fill-drain schedule (Huang et al. 2019,
"GPipe", §2.2-2.3), written with `jax.shard_map` over the mesh's stage axis and
`jax.lax.ppermute` between neighbouring stages.

Letter legend: M microbatches, S stages, L layers of the stack, K = L / S layers of one
stage, B rows of one microbatch, T length, D model width.

The stacked layer parameters [L, ...] are split over the stage axis on L (sharding.rules),
so stage s holds layers s·K .. (s+1)·K - 1: the same arrays, in the same checkpoint layout, a
non-pipelined mesh holds. A step runs M + S - 1 ticks; at tick i stage s applies its K
layers to microbatch i - s, which stage 0 gathers from the input and every other stage
receives from stage s - 1 (one ppermute per tick). Outside the pipeline the rows are split
over the stages as well, so the embedding and head do 1/S of the work on each. Ticks where
i - s lies outside 0..M-1
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
from flax import linen as nn
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


def _without_stage(axes):
    """A logical rule's mesh axes with the stage axis dropped (it is manual in a stage)."""
    if isinstance(axes, (tuple, list)):
        kept = tuple(a for a in axes if a != STAGE_AXIS)
        return kept or None
    return None if axes == STAGE_AXIS else axes


def _gather(a: jax.Array) -> jax.Array:
    """Inside the stage shard_map: this stage's share [B/S, ...] of a microbatch -> all of
    it [B, ...] (rows in (share, stage) order, so the batch axes keep whole blocks)."""
    g = jax.lax.all_gather(a, STAGE_AXIS, axis=1)  # [B/S, S, ...]
    return g.reshape(g.shape[0] * g.shape[1], *g.shape[2:])


def _scatter(a: jax.Array) -> jax.Array:
    """The inverse of `_gather`, summing over stages: [B, ...] -> this stage's [B/S, ...]."""
    S = jax.lax.axis_size(STAGE_AXIS)
    a = a.reshape(a.shape[0] // S, S, *a.shape[1:])  # [B/S, S, ...]
    return jax.lax.psum_scatter(a, STAGE_AXIS, scatter_dimension=1)


def gpipe(stage_fn: Callable, layers, x: jax.Array, rows, shared, key: jax.Array,
          pipe: Pipeline) -> jax.Array:
    """x [N, T, D] through all S stages; stage_fn(layers_of_stage, h [B, T, D],
    rows_of_h, shared, key) -> [B, T, D] applies one stage's K layers to microbatch h.

    `layers`: arrays with a leading [L] axis (split over stages); `rows`: arrays with a
    leading [N] axis that travel with their microbatch (per-row masks); `shared`: arrays
    every microbatch uses whole. Outside the pipeline x's rows are split over the stages too
    (sharding.rules: "batch" includes stage), so the embedding and the head run on N / S rows
    per stage: each stage holds 1/S of the rows of every microbatch, stage 0 gathers
    microbatch i at tick i, and the last stage's output for microbatch m is scattered back
    to the stages it came from. The key is folded with (microbatch, stage), so dropout never
    repeats across microbatches or stages and does not depend on the tick.
    """
    S, M = pipe.stages, pipe.microbatches
    forward = [(s, s + 1) for s in range(S - 1)]  # stage s sends to s + 1; stage 0 gets zeros
    inner_rules = tuple((name, _without_stage(axes))
                        for name, axes in nn.get_logical_axis_rules())

    def per_stage(layers, x, rows, shared, key):
        stage = jax.lax.axis_index(STAGE_AXIS)
        xs = split_rows(x, M)  # [M, B/S, T, D]: this stage's rows of every microbatch
        rows = jax.tree.map(lambda a: split_rows(a, M), rows)  # [M, B/S, ...]

        def tick(carry, i):
            current, outputs = carry  # (h [B, T, D], its rows), [M, B/S, T, D]
            first = jnp.minimum(i, M - 1)  # the microbatch entering stage 0
            fresh = jax.tree.map(_gather, (xs[first], jax.tree.map(lambda a: a[first], rows)))
            h, h_rows = jax.tree.map(lambda f, c: jnp.where(stage == 0, f, c), fresh, current)
            m = jnp.clip(i - stage, 0, M - 1)  # the microbatch this stage works on
            k = jax.random.fold_in(jax.random.fold_in(key, m), stage)
            with nn.logical_axis_rules(inner_rules):
                y = stage_fn(layers, h, h_rows, shared, k)  # [B, T, D]
            # the last stage finished microbatch i - (S - 1): every stage takes its rows back
            out = _scatter(jnp.where(stage == S - 1, y, jnp.zeros_like(y)))  # [B/S, T, D]
            o = jnp.clip(i - (S - 1), 0, M - 1)
            outputs = outputs.at[o].set(jnp.where(i >= S - 1, out, outputs[o]))
            return (jax.lax.ppermute((y, h_rows), STAGE_AXIS, forward), outputs), None

        def empty(a):  # a stage's first input, replaced before use: [B, ...], varying
            z = jnp.zeros((a.shape[1] * S, *a.shape[2:]), a.dtype)
            return jax.lax.pcast(z, STAGE_AXIS, to="varying")

        current = jax.tree.map(empty, (xs, rows))
        outputs = jnp.zeros_like(xs)  # [M, B/S, T, D], varying like xs
        (_, outputs), _ = jax.lax.scan(tick, (current, outputs), jnp.arange(M + S - 1))
        return join_rows(outputs)  # [N/S, T, D]

    P = PartitionSpec
    return jax.shard_map(per_stage, mesh=jax.sharding.get_abstract_mesh(),
                         in_specs=(P(STAGE_AXIS), P(STAGE_AXIS), P(STAGE_AXIS), P(), P()),
                         out_specs=P(STAGE_AXIS), axis_names={STAGE_AXIS})(
        layers, x, rows, shared, key)  # [N, T, D]
