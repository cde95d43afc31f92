"""BERT (Devlin et al. 2019): a bidirectional post-LN encoder with MLM and NSP heads.

Letter legend: B batch, T length, D model width, V vocab.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models.attention import MaskSpec
from scaling.models.layers import (
    Positions,
    activation,
    constrain,
    dtype_of,
    gather_rows,
    layer_norm,
    make_embed,
)
from scaling.models.linear import Linear
from scaling.models.stack import Stack


def _dense(features: int, model: ModelConfig, name: str, axes=("embed", "act_embed")):
    """A [D, features] head layer; its input's leading dims are kept ("...D,DE->...E")."""
    return Linear("...D,DE->...E", (model.d_model, features), axes, (axes[1],),
                  model.init_std, dtype_of(model), name=name)


class BERT(nn.Module):
    """Embeddings (token + position + sentence type, then LayerNorm), encoder, MLM/NSP heads."""

    model: ModelConfig
    deterministic: bool = True
    implementation: str = "xla"
    features: bool = False  # also return the pooled [CLS] state [B, D] (task heads)

    @nn.compact
    def __call__(self, inputs, type_ids, positions, segment_ids):
        """All inputs [B, T] int32. Returns MLM logits [B, T, V] and NSP logits [B, 2]
        (and, with `features`, the pooled [CLS] state [B, D])."""
        m = self.model
        embed = make_embed(m)
        types = self.param(
            "type_embed",
            nn.with_logical_partitioning(nn.initializers.normal(m.init_std), (None, "embed")),
            (m.type_vocab_size, m.d_model))  # [2, D]
        x = embed(inputs) + Positions(m, name="pos_embed")(positions)  # [B, T, D]
        x = x + gather_rows(types, type_ids).astype(x.dtype)
        x = layer_norm(m, "embed_norm")(x).astype(dtype_of(m))
        x = constrain(nn.Dropout(m.dropout, deterministic=self.deterministic)(x))
        mask = MaskSpec(segment_ids, segment_ids)  # [B, T] each; 0 = padding
        x = Stack(m, m.n_layers, causal=False, deterministic=self.deterministic,
                  implementation=self.implementation, name="encoder")(x, mask)  # [B, T, D]
        h = activation(m)(_dense(m.d_model, m, "mlm_dense")(x))  # [B, T, D]
        h = layer_norm(m, "mlm_norm")(h).astype(dtype_of(m))
        bias = self.param("mlm_bias", nn.with_logical_partitioning(
            nn.initializers.zeros, ("vocab",)), (m.padded_vocab,))  # [V]
        mlm_logits = embed.attend(h) + bias  # [B, T, V]
        pooled = jnp.tanh(_dense(m.d_model, m, "pooler")(x[:, 0]))  # [B, D]
        nsp_logits = _dense(2, m, "nsp", axes=("embed", None))(pooled)  # [B, 2]
        if self.features:
            return mlm_logits, nsp_logits.astype(jnp.float32), pooled
        return mlm_logits, nsp_logits.astype(jnp.float32)
