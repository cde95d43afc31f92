"""Batches built from an objective's schema: stand-ins for init, eval_shape, AOT compile and
benchmarks, and the check every real batch from a data pipeline passes.

Letter legend: B batch, T length.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from scaling.errors import DataError


def dummy_batch(fields, batch: int, length: int) -> dict:
    """Arrays of the schema's shapes and dtypes (values as the `fill` says, ids zero)."""
    out = {}
    for f in fields:
        shape = f.shape(batch, length)
        if f.fill == "positions":
            out[f.name] = jnp.broadcast_to(jnp.arange(length, dtype=f.dtype), shape)
        elif f.fill in ("segments", "weights"):
            out[f.name] = jnp.ones(shape, f.dtype)
        else:
            out[f.name] = jnp.zeros(shape, f.dtype)
    return out


def abstract_batch(fields, batch: int, length: int, sharding=None) -> dict:
    """ShapeDtypeStructs of a global batch (for ahead-of-time lowering), with `sharding`."""
    return {f.name: jax.ShapeDtypeStruct(f.shape(batch, length), jnp.dtype(f.dtype),
                                         sharding=sharding) for f in fields}


def synthetic_batch(fields, batch: int, length: int, vocab_size: int,
                    rng: np.random.Generator) -> dict:
    """A full-length, single-document batch with uniform-random token ids (benchmarks: no
    dataset needed); next-token fields continue the random sequence of their source."""
    out = {}
    for f in fields:
        if f.fill == "next":
            seq = rng.integers(0, vocab_size, (batch, length + 1), dtype=np.int32)  # [B, T+1]
            out[f.source], out[f.name] = seq[:, :-1], seq[:, 1:]
    for f in fields:
        shape = f.shape(batch, length)
        if f.name in out:
            value = out[f.name]
        elif f.fill == "ids":
            value = rng.integers(0, vocab_size, shape)
        elif f.fill == "labels":
            value = rng.integers(0, f.classes, shape)
        elif f.fill == "positions":
            value = np.broadcast_to(np.arange(length), shape)
        elif f.fill in ("segments", "weights"):
            value = np.ones(shape)
        else:
            value = np.zeros(shape)
        out[f.name] = np.ascontiguousarray(value, dtype=f.dtype)
    return out


def check_batch(fields, batch: dict, rows: int, length: int, objective: str) -> None:
    """DataError unless `batch` holds exactly the schema's fields with their dtypes and
    shapes for `rows` rows of `length` (a pipeline that drifted from its objective)."""
    names = {f.name for f in fields}
    if set(batch) != names:
        missing, extra = sorted(names - set(batch)), sorted(set(batch) - names)
        raise DataError(f"the {objective} pipeline produced a batch without {missing} or "
                        f"with unexpected {extra}; the {objective} schema has {sorted(names)}")
    for f in fields:
        value = batch[f.name]
        want = f.shape(rows, length)
        if tuple(value.shape) != want or value.dtype != np.dtype(f.dtype):
            raise DataError(f"the {objective} pipeline produced {f.name} of shape "
                            f"{tuple(value.shape)} {value.dtype}; the schema says {want} "
                            f"{f.dtype}")
