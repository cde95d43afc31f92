"""Attention masks: small helpers combined with `&`, and the one function that turns a run's
mask description into the boolean mask the XLA and cuDNN paths use.

Letter legend: B batch, N heads, T query length, S key/value length.

Masks are booleans (True = may attend) shaped to broadcast against [B, N, T, S]. Training
and evaluation describe a layer's mask by `MaskSpec` (which query may see which key: causal
or not, the segment ids of packed documents, where 0 marks padding) plus the layer's band
width, rather than by a dense array, so each attention path can build its own form from the
same facts: `attention_mask` for the XLA path and cuDNN (one function, tested against a
loop), the kernel's own mask objects and segment ids for splash (models/splash.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


def causal_mask(T: int, S: int | None = None) -> jax.Array:
    """Query t sees keys s <= t (queries aligned to the last T keys when S > T)."""
    S = T if S is None else S
    q = jnp.arange(T)[:, None] + (S - T)  # [T, 1]
    k = jnp.arange(S)[None, :]  # [1, S]
    return (k <= q)[None, None]  # [1, 1, T, S]


def padding_mask(key_valid: jax.Array) -> jax.Array:
    """Keys marked valid ([B, S] bool) may be attended to; padding keys may not."""
    return key_valid[:, None, None, :]  # [B, 1, 1, S]


def segment_mask(q_segments: jax.Array, k_segments: jax.Array) -> jax.Array:
    """Packed sequences: a query sees only keys of its own segment (document)."""
    return q_segments[:, None, :, None] == k_segments[:, None, None, :]  # [B, 1, T, S]


def local_mask(T: int, S: int | None, width) -> jax.Array:
    """A band of width r: query t sees keys s with |t - s| < r. r == 0 means no band.

    `width` may be a traced integer, so one scanned stack can alternate dense and banded
    layers (GPT-3 §2.1) by feeding each layer its own width.
    """
    S = T if S is None else S
    q = jnp.arange(T)[:, None] + (S - T)  # [T, 1]
    k = jnp.arange(S)[None, :]  # [1, S]
    return ((width == 0) | (jnp.abs(q - k) < width))[None, None]  # [1, 1, T, S]


def band_mask(q_positions: jax.Array, k_positions: jax.Array, width) -> jax.Array:
    """`local_mask` by positions: query at p sees keys at s with |p - s| < r (r == 0: all).

    q_positions [B, T], k_positions [B, S]; used where queries are not aligned to the last
    keys, e.g. one new token attending to a decode cache. Returns [B, 1, T, S].
    """
    dist = jnp.abs(q_positions[:, :, None] - k_positions[:, None, :])  # [B, T, S]
    return ((width == 0) | (dist < width))[:, None]


def decode_mask(q_positions: jax.Array, S: int) -> jax.Array:
    """Causal mask against a cache of S slots: query at position p sees slots 0..p."""
    return (jnp.arange(S)[None, None, :] <= q_positions[:, :, None])[:, None]  # [B, 1, T, S]


@struct.dataclass
class MaskSpec:
    """Who may attend to whom in one attention call, without the [B, T, S] array.

    q_segments [B, T] and k_segments [B, S] int: a query sees only keys of its own segment
    (packed documents; 0 = padding, which sees only padding). `causal`: query t also sees
    only keys s <= t (queries aligned to the last T keys when S > T).
    """

    q_segments: jax.Array  # [B, T]
    k_segments: jax.Array  # [B, S]
    causal: bool = struct.field(pytree_node=False, default=False)


def attention_mask(spec: MaskSpec, band=None, *, with_causal: bool = True) -> jax.Array:
    """The boolean mask of `spec` and a band of width `band` (None or 0: no band; may be a
    traced integer, one per scanned layer), [B, 1, T, S]. `with_causal=False` leaves out the
    causal part, for a kernel told `is_causal` separately (cuDNN)."""
    T, S = spec.q_segments.shape[1], spec.k_segments.shape[1]
    mask = segment_mask(spec.q_segments, spec.k_segments)  # [B, 1, T, S]
    if spec.causal and with_causal:
        mask = mask & causal_mask(T, S)
    if band is not None:
        mask = mask & local_mask(T, S, band)
    return mask  # [B, 1, T, S]
