"""GPT family (Radford et al. 2018, 2019; Brown et al. 2020): a causal decoder, tied LM head.

Letter legend: B batch, T length, D model width, V vocab.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models.attention import MaskSpec, decode_mask
from scaling.models.layers import (
    Positions,
    constrain,
    dtype_of,
    layer_norm,
    make_embed,
    mask_padded_vocab,
)
from scaling.models.linear import Linear
from scaling.models.stack import Stack


class GPT(nn.Module):
    """Token + position embeddings, a causal stack, a final LayerNorm (pre-LN), tied logits."""

    model: ModelConfig
    deterministic: bool = True
    implementation: str = "xla"
    decode: bool = False  # autoregressive: a key/value cache of max_len slots per layer
    features: bool = False  # also return the final states [B, T, D] (task heads)

    @nn.compact
    def __call__(self, inputs, positions=None, segment_ids=None):
        """inputs, positions, segment_ids: [B, T] int32 (segment 0 = padding). Returns [B, T, V].

        Packed rows carry one segment id per document; attention never crosses documents.
        Decoding (mutable "cache") continues the sequence held in the cache: `inputs` are the
        next T tokens of every row, written at the next T cache slots; `positions` default to
        those slots, and `segment_ids` 0 mark slots (left padding) no query may attend to.
        """
        m = self.model
        B, T = inputs.shape
        slots = None
        if self.decode:
            index = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
            slots = index.value + jnp.broadcast_to(jnp.arange(T), (B, T))  # [B, T]
            index.value = index.value + T
            # rows of different lengths (left padding): a row's positions differ from its
            # cache slots, and its padding slots (segment 0) are never attended to
            pad = self.variable("cache", "padding", lambda: jnp.zeros((B, m.max_len), bool))
            if segment_ids is not None:
                pad.value = jax.lax.dynamic_update_slice(pad.value, segment_ids == 0,
                                                         (0, slots[0, 0]))
            if positions is None:
                positions = slots
            mask = decode_mask(slots, m.max_len) & ~pad.value[:, None, None, :]  # [B,1,T,S]
        else:
            if positions is None:
                positions = jnp.broadcast_to(jnp.arange(T), (B, T))  # [B, T]
            if segment_ids is None:
                segment_ids = jnp.ones((B, T), jnp.int32)  # [B, T]
            mask = MaskSpec(segment_ids, segment_ids, causal=True)  # [B, T] each
        embed = make_embed(m)
        x = embed(inputs) + Positions(m, name="pos_embed")(positions)  # [B, T, D]
        x = nn.Dropout(m.dropout, deterministic=self.deterministic)(x)
        x = constrain(x)
        x = Stack(m, m.n_layers, causal=True, deterministic=self.deterministic,
                  implementation=self.implementation, cache_len=m.max_len if self.decode else 0,
                  name="decoder")(x, mask, positions=positions if slots is None else slots)
        # x: [B, T, D]
        if m.norm == "pre":
            x = layer_norm(m, "final_norm")(x).astype(x.dtype)
        h = x  # [B, T, D] the final states (GPT-1 §3.2: h_l)
        x = x / m.width_mult  # μP output multiplier (Yang et al. 2022, Table 8); 1 otherwise
        if m.tie_embeddings:
            logits = embed.attend(x)  # [B, T, V] float32
        else:
            head = Linear("BTD,DV->BTV", (m.d_model, m.padded_vocab), ("embed", "vocab"), None,
                          m.init_std, dtype_of(m), name="lm_head")
            logits = mask_padded_vocab(head(x).astype(jnp.float32), m.vocab_size)  # [B, T, V]
        return (logits, h) if self.features else logits
