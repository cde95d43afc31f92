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


def compiler_options(train, platform: str) -> dict:
    """XLA options the dropout generator needs on `platform`. rbg on TPU: let the SPMD
    partitioner generate each device's shard of a mask on that device
    (xla_tpu_spmd_rng_bit_generator_unsafe, as MaxText sets it); without it every device
    generates whole masks (a 16-chip gpt3-350m test: 28.7 GiB of temporaries, 11.3 with)."""
    if train.dropout_rng != "threefry" and platform == "tpu":
        return {"xla_tpu_spmd_rng_bit_generator_unsafe": True}
    return {}


def set_tpu_flags(train) -> None:
    """The same option for the training jits, through LIBTPU_INIT_ARGS: call before JAX
    initializes its backends (it has no effect on other platforms)."""
    import os

    for name, value in compiler_options(train, "tpu").items():
        flag = f"--{name}={str(value).lower()}"
        args = os.environ.get("LIBTPU_INIT_ARGS", "")
        if flag not in args.split():
            os.environ["LIBTPU_INIT_ARGS"] = f"{args} {flag}".strip()
