"""Masks and multi-head attention: the one attention every family uses.

Letter legend (shape comments and einsum strings):
  B batch, T query length, S key/value length, N heads, H head width, D model width.

Masks are booleans (True = may attend) shaped to broadcast against [B, N, T, S], built by the
small helpers below and combined with `&`. Logits and softmax run in float32; masked entries
get a finite large negative so fully masked rows (padding queries) stay finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from scaling.models import choices
from scaling.models.linear import Linear

IMPLEMENTATIONS = choices.ATTENTION  # model.attention: the paths below; auto: platform.py
NEG_INF = -1e30  # finite: exp() underflows to 0 without producing NaN in fully masked rows


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


def dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array | None,
    *,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
    scale: float | None = None,
) -> jax.Array:
    """softmax(scale · q kᵀ + mask) v (Vaswani et al. 2017 §3.2.1), the XLA path.

    q: [B, T, N, H]; k, v: [B, S, N, H]; mask broadcastable to [B, N, T, S]; scale defaults
    to 1/√H. Returns [B, T, N, H].
    """
    scale = 1.0 / float(q.shape[-1]) ** 0.5 if scale is None else scale
    logits = jnp.einsum("BTNH,BSNH->BNTS", q, k, preferred_element_type=jnp.float32)
    logits = logits * jnp.float32(scale)  # [B, N, T, S]
    if mask is not None:
        logits = jnp.where(mask, logits, NEG_INF)
    probs = jax.nn.softmax(logits, axis=-1)  # [B, N, T, S] float32
    if dropout_rate > 0.0 and dropout_rng is not None:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
        probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0)
    return jnp.einsum("BNTS,BSNH->BTNH", probs.astype(v.dtype), v)  # [B, T, N, H]


def cudnn_attention(q, k, v, mask, *, causal: bool, scale: float | None = None) -> jax.Array:
    """The fused cuDNN kernel (GPU only); same contract as `dot_product_attention`, no dropout.

    The causal part of the mask is passed as `is_causal` so the kernel can skip masked tiles;
    `mask` then holds only the rest (segments, padding, band).
    """
    return jax.nn.dot_product_attention(
        q, k, v, mask=mask, is_causal=causal, scale=scale, implementation="cudnn"
    )  # [B, T, N, H]


def fused_projections(projections, x: jax.Array) -> list[jax.Array]:
    """Self-attention's query, key and value of x [B, T, D] as one matmul against the three
    [D, N, H] kernels concatenated at trace time (the parameters stay three Linears).
    Returns three [B, T, N, H]."""
    weights = [p() for p in projections]  # (kernel [D, N, H], bias [N, H] or None)
    kernel = jnp.stack([w for w, _ in weights], axis=1)  # [D, C, N, H], C = 3
    y = jnp.einsum("BTD,DCNH->BTCNH", x.astype(kernel.dtype), kernel)  # [B, T, C, N, H]
    if weights[0][1] is not None:
        y = y + jnp.stack([b for _, b in weights])  # + [C, N, H]
    return [y[:, :, i] for i in range(len(weights))]


class Attention(nn.Module):
    """Multi-head attention with its projections; self-attention when `x_kv` is `x_q`."""

    n_heads: int
    dtype: jnp.dtype = jnp.float32
    init_std: float = 0.02
    out_std: float = 0.02  # GPT-2 §2.3 scales residual projections by 1/√(2L)
    dropout_rate: float = 0.0
    deterministic: bool = True
    implementation: str = "xla"  # xla | cudnn
    logit_scale: float | None = None  # None: 1/√H; μP uses ∝ 1/H (Yang et al. 2022 §3)
    cache_len: int = 0  # > 0: autoregressive decoding with a key/value cache of this many slots
    cache_kv: bool = False  # cross-attention while decoding: keys/values of x_kv computed once

    def _update_cache(self, k, v, start):
        """Write this call's keys and values at slots start.. of the decode cache and return
        the whole cache; the mask (`decode_mask`) hides the slots not yet written."""
        B, T, N, H = k.shape
        shape = (B, self.cache_len, N, H)
        ck = self.variable("cache", "cached_key", jnp.zeros, shape, k.dtype)
        cv = self.variable("cache", "cached_value", jnp.zeros, shape, v.dtype)
        at = (0, start, 0, 0)
        ck.value = jax.lax.dynamic_update_slice(ck.value, k.astype(ck.value.dtype), at)
        cv.value = jax.lax.dynamic_update_slice(cv.value, v.astype(cv.value.dtype), at)
        return ck.value, cv.value  # [B, cache_len, N, H]

    @nn.compact
    def __call__(self, x_q, x_kv, mask, *, causal: bool = False, start=0):
        """x_q: [B, T, D]; x_kv: [B, S, D]; mask broadcastable to [B, N, T, S]. Returns [B, T, D].

        `mask` must already include the causal part when `causal` is set; the flag only lets
        the cuDNN path use its causal kernel. With a decode cache, the new keys go to slots
        `start`.. and `mask` is against all `cache_len` slots. With `cache_kv`, the first call
        stores the keys/values of `x_kv` and later calls reuse them (x_kv may then be None).
        """
        D = x_q.shape[-1]
        N, H = self.n_heads, D // self.n_heads

        def proj(name):
            return Linear("BTD,DNH->BTNH", (D, N, H), ("embed", "heads", "kv"),
                          ("heads", "kv"), self.init_std, self.dtype, name=name)

        if x_kv is x_q and not self.cache_kv:
            q, k, v = fused_projections([proj(n) for n in ("query", "key", "value")], x_q)
        elif self.cache_kv and self.has_variable("cache", "cross_key"):
            q = proj("query")(x_q)  # [B, T, N, H]
            # decoding after the first step: the encoder's keys/values as computed then
            k = self.get_variable("cache", "cross_key")  # [B, S, N, H]
            v = self.get_variable("cache", "cross_value")  # [B, S, N, H]
        else:
            q = proj("query")(x_q)  # [B, T, N, H]
            k = proj("key")(x_kv)  # [B, S, N, H]
            v = proj("value")(x_kv)  # [B, S, N, H]
            if self.cache_kv:
                self.put_variable("cache", "cross_key", k)
                self.put_variable("cache", "cross_value", v)
        if self.cache_len:
            k, v = self._update_cache(k, v, start)  # [B, cache_len, N, H]
        dropout = 0.0 if self.deterministic else self.dropout_rate
        if self.implementation == "cudnn" and dropout == 0.0 and not self.cache_len:
            rest = None if mask is None else mask
            if causal and mask is not None:
                rest = mask | ~causal_mask(q.shape[1], k.shape[1])  # drop the causal part
            out = cudnn_attention(q, k, v, rest, causal=causal,
                                  scale=self.logit_scale)  # [B, T, N, H]
        else:
            rng = self.make_rng("dropout") if dropout > 0.0 else None
            out = dot_product_attention(q, k, v, mask, dropout_rate=dropout, dropout_rng=rng,
                                        scale=self.logit_scale)  # [B, T, N, H]
        return Linear("BTNH,NHD->BTD", (N, H, D), ("heads", "kv", "embed"), ("embed",),
                      self.out_std, self.dtype, name="out")(out)  # [B, T, D]
