"""Building blocks shared by every family: embeddings, positions, norm, MLP and the block.

Letter legend: B batch, T query length, S key length, D model width, F MLP width, V vocab.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models import choices
from scaling.models.attention import Attention, MaskSpec, band_mask, local_mask
from scaling.models.linear import Linear

# model.activation -> the nonlinearity of the MLP and of BERT's MLM head transform.
# "gelu" is exact (erf; BERT as released in HuggingFace, `hidden_act="gelu"`); "gelu_tanh" is
# the tanh approximation (GPT-2's "gelu_new", GPT-1, Google's TF BERT); "relu" is Vaswani's.
ACTIVATIONS = {
    "gelu": lambda h: nn.gelu(h, approximate=False),
    "gelu_tanh": lambda h: nn.gelu(h, approximate=True),
    "relu": nn.relu,
}


def activation(model: ModelConfig):
    """The configured nonlinearity of `model` (model.activation)."""
    return ACTIVATIONS[model.activation]
choices.check_table(ACTIVATIONS, choices.ACTIVATIONS, "model.activation")


def dtype_of(model: ModelConfig):
    """The compute dtype of `model`. Entry points resolve `auto` against the target devices
    first (scaling/platform.py); a model built directly from an unresolved config falls back
    to the platform of the default devices."""
    if model.dtype == "auto":
        from scaling.platform import auto_dtype

        return jnp.dtype(auto_dtype(jax.devices()[0].platform))
    return jnp.dtype(model.dtype)


def constrain(x: jax.Array) -> jax.Array:
    """Pin a [B, T, D] activation at a block boundary: batch over data×fsdp, D replicated."""
    return nn.with_logical_constraint(x, ("batch", "length", "act_embed"))


class Embed(nn.Module):
    """Token embedding table, also the tied output projection (GPT-2, BERT, Vaswani §3.4)."""

    vocab_size: int  # real tokens; the table has `rows` >= vocab_size (padded)
    rows: int
    d_model: int
    init_std: float = 0.02
    dtype: jnp.dtype = jnp.float32

    def setup(self):
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(nn.initializers.normal(self.init_std), ("vocab", "embed")),
            (self.rows, self.d_model),
        )  # [V, D]

    def __call__(self, ids: jax.Array) -> jax.Array:
        return gather_rows(self.embedding, ids).astype(self.dtype)  # [B, T, D]

    def attend(self, x: jax.Array) -> jax.Array:
        """Logits against every token: x [B, T, D] -> [B, T, V] in float32."""
        logits = jnp.einsum("BTD,VD->BTV", x, self.embedding.astype(self.dtype),
                            preferred_element_type=jnp.float32)
        return mask_padded_vocab(logits, self.vocab_size)


def make_embed(model: ModelConfig, name: str = "token_embed") -> Embed:
    return Embed(model.vocab_size, model.padded_vocab, model.d_model, model.init_std,
                 dtype_of(model), name=name)


def mask_padded_vocab(logits: jax.Array, vocab_size: int) -> jax.Array:
    """Padding rows of the table are never predicted: their logits become a large negative."""
    if logits.shape[-1] == vocab_size:
        return logits
    real = jnp.arange(logits.shape[-1]) < vocab_size  # [V]
    return jnp.where(real, logits, -1e30)


def gather_rows(table: jax.Array, ids: jax.Array) -> jax.Array:
    """table[ids] with the table gathered whole first: a row lookup from a table sharded on
    both axes has no efficient partitioning, so XLA would otherwise replicate it anyway."""
    table = nn.with_logical_constraint(table, (None, None))  # [V, D] replicated
    return constrain(jnp.take(table, ids, axis=0))  # [B, T, D]


def sinusoidal_positions(positions: jax.Array, d_model: int) -> jax.Array:
    """Vaswani et al. 2017 §3.5: PE(p, 2i) = sin(p / 10000^(2i/D)), PE(p, 2i+1) = cos(...)."""
    i = jnp.arange(d_model // 2, dtype=jnp.float32)  # [D/2]
    inv_freq = jnp.exp(-math.log(10000.0) * 2.0 * i / d_model)  # [D/2]
    angles = positions[..., None].astype(jnp.float32) * inv_freq  # [B, T, D/2]
    pe = jnp.stack([jnp.sin(angles), jnp.cos(angles)], axis=-1)  # [B, T, D/2, 2]
    return pe.reshape(*positions.shape, d_model)  # [B, T, D] (sin, cos interleaved)


class Positions(nn.Module):
    """Learned (GPT, BERT) or sinusoidal (Vaswani) position embeddings for given positions."""

    model: ModelConfig

    @nn.compact
    def __call__(self, positions: jax.Array) -> jax.Array:
        m = self.model
        if m.pos_emb == "sinusoidal":
            return sinusoidal_positions(positions, m.d_model).astype(dtype_of(m))  # [B, T, D]
        table = self.param(
            "embedding",
            nn.with_logical_partitioning(nn.initializers.normal(m.init_std), (None, "embed")),
            (m.max_len, m.d_model),
        )  # [max_len, D]
        return gather_rows(table, positions).astype(dtype_of(m))  # [B, T, D]


def layer_norm(model: ModelConfig, name: str) -> nn.LayerNorm:
    """LayerNorm (Ba et al. 2016) computed in float32, scale and bias replicated."""
    return nn.LayerNorm(
        epsilon=model.ln_eps, dtype=jnp.float32, name=name,
        scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)),
    )


class MLP(nn.Module):
    """Position-wise feed-forward network: D -> F -> D with model.activation between."""

    model: ModelConfig
    in_std: float
    out_std: float
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        m = self.model
        h = Linear("BTD,DF->BTF", (m.d_model, m.d_ff), ("embed", "mlp"), ("mlp",),
                   self.in_std, dtype_of(m), name="wi")(x)  # [B, T, F]
        h = activation(m)(h)
        h = nn.Dropout(m.dropout, deterministic=self.deterministic)(h)
        return Linear("BTF,FD->BTD", (m.d_ff, m.d_model), ("mlp", "embed"), ("embed",),
                      self.out_std, dtype_of(m), name="wo")(h)  # [B, T, D]


class Block(nn.Module):
    """One Transformer layer: self-attention, optional cross-attention, MLP.

    Pre-LN (GPT-2 §2.3, GPT-3): x + f(LN(x)). Post-LN (Vaswani §3.1, BERT, GPT-1): LN(x + f(x)).
    Call signature fits `nn.scan`: (x, band) -> (x, None), with the masks and the encoder
    output broadcast to every layer.
    """

    model: ModelConfig
    n_layers_total: int  # for the 1/√(2L) residual init scale
    causal: bool = False
    cross: bool = False
    deterministic: bool = True
    implementation: str = "xla"
    cache_len: int = 0  # > 0: decoding: self-attention cache, cross-attention K/V computed once

    def _residual(self, x, fn, name):
        m = self.model
        drop = nn.Dropout(m.dropout, deterministic=self.deterministic)
        if m.norm == "pre":
            return x + drop(fn(layer_norm(m, f"{name}_norm")(x).astype(x.dtype)))
        return layer_norm(m, f"{name}_norm")(x + drop(fn(x))).astype(x.dtype)

    @nn.compact
    def __call__(self, x, band, self_mask, enc=None, enc_mask=None, positions=None):
        """x: [B, T, D]; band: scalar width (0 = dense); self_mask: a MaskSpec, or an array
        [B|1, 1, T, T], or [B, 1, T, cache_len] when decoding, where `positions` [B, T] place
        the new tokens; enc_mask likewise (a MaskSpec, or [B, 1, T|1, S])."""
        m = self.model
        # μP (Yang et al. 2022, Table 3): hidden weights get init variance ∝ 1/fan_in, and
        # attention logits scale ∝ 1/H; width_mult = 1 is the standard parameterization.
        std = m.init_std / math.sqrt(m.width_mult)
        out_std = std / math.sqrt(2 * self.n_layers_total)
        scale = 1.0 / math.sqrt(m.d_head * m.width_mult) if m.scale_attn else 1.0

        def attention(name, cache_len=0, cache_kv=False):
            return Attention(
                m.n_heads, dtype=dtype_of(m), init_std=std, out_std=out_std,
                dropout_rate=m.attn_dropout, deterministic=self.deterministic,
                implementation=self.implementation, band_width=m.local_window,
                logit_scale=scale, cache_len=cache_len,
                cache_kv=cache_kv, name=name)

        start, width = 0, None
        if self.cache_len:
            slots = jnp.arange(self.cache_len)[None, :]  # [1, S]
            mask = self_mask & band_mask(positions, slots, band)  # [B, 1, T, S]
            start = positions[0, 0]  # every row decodes the same step
        elif m.local_window > 0:  # some layers of the stack are banded (bands.py)
            mask, width = self_mask, band  # the attention path builds its mask from both
            if not isinstance(mask, MaskSpec):
                T = x.shape[1]
                mask, width = self_mask & local_mask(T, T, band), None  # [B, 1, T, T]
        else:  # all dense
            mask = self_mask  # a MaskSpec, or [B|1, 1, T, T]
        self_attn = attention("self_attn", self.cache_len)
        x = self._residual(
            x, lambda h: self_attn(h, h, mask, causal=self.causal, start=start, band=width),
            "self_attn")
        if self.cross:
            cross = attention("cross_attn", cache_kv=self.cache_len > 0)  # decoding: K/V once
            x = self._residual(x, lambda h: cross(h, enc, enc_mask), "cross_attn")
        mlp = MLP(m, in_std=std, out_std=out_std, deterministic=self.deterministic, name="mlp")
        x = self._residual(x, mlp, "mlp")
        return constrain(x), None  # [B, T, D]
