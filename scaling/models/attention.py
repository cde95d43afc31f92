"""Multi-head attention: the one attention every family uses, on one of three paths.

Letter legend (shape comments and einsum strings):
  B batch, T query length, S key/value length, N heads, H head width, D model width.

Paths (model.attention, chosen per platform in scaling/platform.py): `xla` (the einsums
below, dropout included), `cudnn` (cuDNN's fused kernel on GPU), `splash` (the Pallas kernel
on TPU, models/splash.py). Masks come from models/masks.py; the XLA and cuDNN paths build
theirs with the one `attention_mask`. On the XLA path logits and softmax run in float32;
masked entries get a finite large negative so fully masked rows (padding queries) stay
finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from scaling.models import choices
from scaling.models.linear import Linear
from scaling.models.masks import (  # noqa: F401  (the helpers' old home: names kept)
    MaskSpec,
    attention_mask,
    band_mask,
    causal_mask,
    decode_mask,
    local_mask,
    padding_mask,
    segment_mask,
)
from scaling.models.splash import splash_attention

IMPLEMENTATIONS = choices.ATTENTION  # model.attention: the paths below; auto: platform.py
NEG_INF = -1e30  # finite: exp() underflows to 0 without producing NaN in fully masked rows


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


def _fused_ok(implementation: str, dropout: float, cache_len: int) -> bool:
    """The fused kernels take no attention dropout (platform.py says so once per run) and
    no decode cache (generation runs the XLA path)."""
    return implementation != "xla" and dropout == 0.0 and not cache_len


class Attention(nn.Module):
    """Multi-head attention with its projections; self-attention when `x_kv` is `x_q`."""

    n_heads: int
    dtype: jnp.dtype = jnp.float32
    init_std: float = 0.02
    out_std: float = 0.02  # GPT-2 §2.3 scales residual projections by 1/√(2L)
    dropout_rate: float = 0.0
    deterministic: bool = True
    implementation: str = "xla"  # xla | cudnn | splash | splash-interpret (resolved: platform.py)
    band_width: int = 0  # model.local_window: the width a banded layer's `band` may take
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
    def __call__(self, x_q, x_kv, mask, *, causal: bool = False, start=0, band=None):
        """x_q: [B, T, D]; x_kv: [B, S, D]. Returns [B, T, D].

        `mask` is a `MaskSpec` (with `band`, this layer's band width, traced; None: no band)
        or a boolean array broadcastable to [B, N, T, S]. An array must already include the
        causal part when `causal` is set; the flag only lets the cuDNN path use its causal
        kernel. With a decode cache, the new keys go to slots
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
        out = self._attend(q, k, v, mask, causal, band)  # [B, T, N, H]
        return Linear("BTNH,NHD->BTD", (N, H, D), ("heads", "kv", "embed"), ("embed",),
                      self.out_std, self.dtype, name="out")(out)  # [B, T, D]

    def _attend(self, q, k, v, mask, causal: bool, band):
        """q: [B, T, N, H]; k, v: [B, S, N, H] on the configured path. Returns [B, T, N, H]."""
        dropout = 0.0 if self.deterministic else self.dropout_rate
        fused = _fused_ok(self.implementation, dropout, self.cache_len)
        spec = mask if isinstance(mask, MaskSpec) else None
        if fused and spec is not None and self.implementation.startswith("splash"):
            return splash_attention(q, k, v, spec, band, width=self.band_width,
                                    scale=self.logit_scale,
                                    interpret=self.implementation == "splash-interpret")
        if fused and self.implementation == "cudnn":
            if spec is not None:  # the causal part goes to the kernel as is_causal
                rest = attention_mask(spec, band, with_causal=False)  # [B, 1, T, S]
                causal = spec.causal
            elif causal and mask is not None:
                rest = mask | ~causal_mask(q.shape[1], k.shape[1])  # drop the causal part
            else:
                rest = mask
            return cudnn_attention(q, k, v, rest, causal=causal, scale=self.logit_scale)
        if spec is not None:
            mask = attention_mask(spec, band)  # [B, 1, T, S]
        rng = self.make_rng("dropout") if dropout > 0.0 else None
        return dot_product_attention(q, k, v, mask, dropout_rate=dropout, dropout_rng=rng,
                                     scale=self.logit_scale)  # [B, T, N, H]
