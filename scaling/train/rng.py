"""Which PRNG draws the dropout masks (`train.dropout_rng`).

threefry    JAX's default counter-based generator (threefry2x32): the masks are the same on
            every platform and for every mesh (partitionable), so a run resumed on another
            mesh draws the same masks. On TPU each mask is ~20 rounds of integer arithmetic
            fused into the neighbouring ops; for very large layers the TPU compiler spends
            minutes on those fusions (gpt3-175b: README "Scaling out").
rbg         the accelerator's own bit generator (XLA RngBitGenerator): one op, cheap to compile
            and to run on TPU (what MaxText uses). Deterministic for a given mesh and seed
            (resume on the same mesh stays bit-exact); the masks differ from threefry's and
            may change with the partitioning.
unsafe_rbg  rbg that also derives keys the cheap way (split/fold_in not guaranteed
            independent streams); fastest.

Parameters are always initialized with threefry: the choice changes dropout only.
"""

from __future__ import annotations

DROPOUT_RNGS = {"threefry": "threefry2x32", "rbg": "rbg", "unsafe_rbg": "unsafe_rbg"}


def dropout_key(train):
    """The run's base dropout key (`fold_in(key(seed), 1)`); each step folds in its number."""
    import jax

    base = jax.random.key(train.seed, impl=DROPOUT_RNGS[train.dropout_rng])
    return jax.random.fold_in(base, 1)
