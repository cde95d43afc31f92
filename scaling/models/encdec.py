"""The encoder-decoder Transformer (Vaswani et al. 2017): shared embeddings, sinusoidal positions.

Letter legend: B batch, S source length, T target length, D model width, V vocab.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models.attention import MaskSpec, decode_mask
from scaling.models.layers import Positions, constrain, layer_norm, make_embed
from scaling.models.stack import Stack


class EncDec(nn.Module):
    """Encoder stack, decoder stack with cross-attention, logits tied to the shared embedding.

    With `decode`, the decoder continues the targets held in its cache ("cache" collection,
    mutable): the first call encodes the source, stores which source positions are real and
    each decoder layer's cross-attention keys/values; every call appends `decoder_inputs`
    to the self-attention cache. Later calls need no source (pass None).
    """

    model: ModelConfig
    deterministic: bool = True
    implementation: str = "xla"
    decode: bool = False

    def _embed(self, embed, ids, positions, name):
        m = self.model
        x = embed(ids) * math.sqrt(m.d_model)  # §3.4: embeddings scaled by √D
        x = x + Positions(m, name=name)(positions)  # [B, T, D]
        return constrain(nn.Dropout(m.dropout, deterministic=self.deterministic)(x))

    def _encode(self, embed, inputs, input_positions, input_segment_ids):
        m = self.model
        src_mask = MaskSpec(input_segment_ids, input_segment_ids)  # [B, S] each
        enc = Stack(m, m.n_layers, deterministic=self.deterministic,
                    implementation=self.implementation, name="encoder")(
            self._embed(embed, inputs, input_positions, "Positions_0"), src_mask)  # [B, S, D]
        if m.norm == "pre":
            enc = layer_norm(m, "encoder_norm")(enc).astype(enc.dtype)
        return enc

    @nn.compact
    def __call__(self, inputs, input_positions, input_segment_ids,
                 decoder_inputs, positions=None, segment_ids=None):
        """Source [B, S] and target [B, T] ids, positions, segments. Returns logits [B, T, V]."""
        m = self.model
        embed = make_embed(m)
        T = decoder_inputs.shape[1]
        if self.decode:
            first = not self.has_variable("cache", "source_valid")
            valid = self.variable("cache", "source_valid", lambda: input_segment_ids != 0)
            enc = self._encode(embed, inputs, input_positions, input_segment_ids) if first \
                else None  # [B, S, D]; afterwards the layers hold its keys/values
            index = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
            B = decoder_inputs.shape[0]
            positions = index.value + jnp.broadcast_to(jnp.arange(T), (B, T))  # [B, T]
            index.value = index.value + T
            self_mask = decode_mask(positions, m.max_len)  # [B, 1, T, max_len]
            cross_mask = valid.value[:, None, None, :]  # [B, 1, 1, S]
        else:
            enc = self._encode(embed, inputs, input_positions, input_segment_ids)  # [B, S, D]
            self_mask = MaskSpec(segment_ids, segment_ids, causal=True)  # [B, T] each
            cross_mask = MaskSpec(segment_ids, input_segment_ids)  # [B, T], [B, S]
        y = Stack(m, m.n_decoder_layers, causal=True, cross=True,
                  deterministic=self.deterministic, implementation=self.implementation,
                  cache_len=m.max_len if self.decode else 0, name="decoder")(
            self._embed(embed, decoder_inputs, positions, "Positions_1"), self_mask, enc,
            cross_mask,
            positions=positions if self.decode else None)  # [B, T, D]
        if m.norm == "pre":
            y = layer_norm(m, "decoder_norm")(y).astype(y.dtype)
        return embed.attend(y)  # [B, T, V]
