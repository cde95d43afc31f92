"""The encoder-decoder Transformer (Vaswani et al. 2017): shared embeddings, sinusoidal positions.

Letter legend: B batch, S source length, T target length, D model width, V vocab.
"""

from __future__ import annotations

import math

from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models.attention import causal_mask, segment_mask
from scaling.models.layers import Positions, constrain, layer_norm, make_embed
from scaling.models.stack import Stack


class EncDec(nn.Module):
    """Encoder stack, decoder stack with cross-attention, logits tied to the shared embedding."""

    model: ModelConfig
    deterministic: bool = True
    implementation: str = "xla"

    def _embed(self, embed, ids, positions):
        m = self.model
        x = embed(ids) * math.sqrt(m.d_model)  # §3.4: embeddings scaled by √D
        x = x + Positions(m)(positions)  # [B, T, D]
        return constrain(nn.Dropout(m.dropout, deterministic=self.deterministic)(x))

    @nn.compact
    def __call__(self, inputs, input_positions, input_segment_ids,
                 decoder_inputs, positions, segment_ids):
        """Source [B, S] and target [B, T] ids, positions, segments. Returns logits [B, T, V]."""
        m = self.model
        embed = make_embed(m)
        src_mask = segment_mask(input_segment_ids, input_segment_ids)  # [B, 1, S, S]
        enc = Stack(m, m.n_layers, deterministic=self.deterministic,
                    implementation=self.implementation, name="encoder")(
            self._embed(embed, inputs, input_positions), src_mask)  # [B, S, D]
        if m.norm == "pre":
            enc = layer_norm(m, "encoder_norm")(enc).astype(enc.dtype)
        T = decoder_inputs.shape[1]
        self_mask = causal_mask(T) & segment_mask(segment_ids, segment_ids)  # [B, 1, T, T]
        cross_mask = segment_mask(segment_ids, input_segment_ids)  # [B, 1, T, S]
        y = Stack(m, m.n_decoder_layers, causal=True, cross=True,
                  deterministic=self.deterministic, implementation=self.implementation,
                  name="decoder")(
            self._embed(embed, decoder_inputs, positions), self_mask, enc, cross_mask)
        if m.norm == "pre":
            y = layer_norm(m, "decoder_norm")(y).astype(y.dtype)
        return embed.attend(y)  # [B, T, V]
