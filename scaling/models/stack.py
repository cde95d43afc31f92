"""The layer stack: `nn.scan` over a `layers` axis (one compiled block) or an unrolled loop.

Letter legend: B batch, T length, D model width, L layers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models import choices
from scaling.models.bands import band_widths
from scaling.models.layers import Block

# Named rematerialization policies: what the backward pass may keep instead of recomputing.
# "none" keeps everything (no remat); config validation reads the names from this table.
REMAT_POLICIES = {
    "none": None,
    "full": None,  # keep nothing inside a block: least memory, one extra forward
    "dots": jax.checkpoint_policies.checkpoint_dots,  # keep every matmul output
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
choices.check_table(REMAT_POLICIES, choices.REMAT_POLICIES, "model.remat")


class Stack(nn.Module):
    """`n_layers` blocks applied in order; parameters of a scanned stack carry a leading [L]."""

    model: ModelConfig
    n_layers: int
    causal: bool = False
    cross: bool = False
    deterministic: bool = True
    implementation: str = "xla"
    cache_len: int = 0  # > 0: decoding with a key/value cache in every layer

    @nn.compact
    def __call__(self, x, self_mask, enc=None, enc_mask=None, positions=None):
        """x: [B, T, D]; self_mask: [B|1, 1, T, T] ([B, 1, T, cache_len] when decoding, with
        `positions` [B, T]); enc: [B, S, D]; enc_mask: [B, 1, T|1, S]."""
        m = self.model
        block = Block
        if m.remat != "none":
            block = nn.remat(Block, policy=REMAT_POLICIES[m.remat], prevent_cse=not m.scan_layers)
        kwargs = dict(model=m, n_layers_total=self.n_layers, causal=self.causal, cross=self.cross,
                      deterministic=self.deterministic, implementation=self.implementation,
                      cache_len=self.cache_len)
        bands = jnp.asarray(band_widths(m, self.n_layers))  # [L]
        if m.scan_layers:
            scanned = nn.scan(
                block,
                variable_axes={"params": 0, "cache": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast),
                length=self.n_layers,
                unroll=max(1, min(m.scan_unroll, self.n_layers)),
                metadata_params={nn.PARTITION_NAME: "layers"},
            )
            x, _ = scanned(**kwargs, name="layers")(x, bands, self_mask, enc, enc_mask,
                                                     positions)
            return x  # [B, T, D]
        for i in range(self.n_layers):
            x, _ = block(**kwargs, name=f"layer_{i}")(x, bands[i], self_mask, enc, enc_mask,
                                                      positions)
        return x  # [B, T, D]
