"""The layer stack: `nn.scan` over a `layers` axis (one compiled block) or an unrolled loop.

Letter legend: B batch, T length, D model width, L layers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models import choices, pipeline
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


def _scanned(block, length: int, unroll: int):
    """`block` scanned over a [length] layer axis: parameters and caches stacked on axis 0,
    one dropout key per layer, the masks and encoder output broadcast to every layer."""
    return nn.scan(
        block,
        variable_axes={"params": 0, "cache": 0},
        split_rngs={"params": True, "dropout": True},
        in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast),
        length=length,
        unroll=max(1, min(unroll, length)),
        metadata_params={nn.PARTITION_NAME: "layers"},
    )


class Stack(nn.Module):
    """`n_layers` blocks applied in order; parameters of a scanned stack carry a leading [L].

    Inside a pipeline schedule (models/pipeline.py: the train and eval steps on a mesh with
    a stage axis) the scanned stack runs as GPipe stages of L / S layers each."""

    model: ModelConfig
    n_layers: int
    causal: bool = False
    cross: bool = False
    deterministic: bool = True
    implementation: str = "xla"
    cache_len: int = 0  # > 0: decoding with a key/value cache in every layer

    def _block_kwargs(self) -> dict:
        return dict(model=self.model, n_layers_total=self.n_layers, causal=self.causal,
                    cross=self.cross, deterministic=self.deterministic,
                    implementation=self.implementation, cache_len=self.cache_len)

    @nn.compact
    def __call__(self, x, self_mask, enc=None, enc_mask=None, positions=None):
        """x: [B, T, D]; self_mask: a MaskSpec, or [B|1, 1, T, T] ([B, 1, T, cache_len] when
        decoding, with `positions` [B, T]); enc: [B, S, D]; enc_mask: a MaskSpec or
        [B, 1, T|1, S]."""
        m = self.model
        block = Block
        if m.remat != "none":
            block = nn.remat(Block, policy=REMAT_POLICIES[m.remat], prevent_cse=not m.scan_layers)
        kwargs = self._block_kwargs()
        bands = jnp.asarray(band_widths(m, self.n_layers))  # [L]
        if m.scan_layers:
            pipe = pipeline.active()
            if pipe is not None and not self.cache_len and not self.is_initializing():
                return self._pipelined(pipe, block, x, bands, self_mask, enc, enc_mask)
            scanned = _scanned(block, self.n_layers, m.scan_unroll)
            x, _ = scanned(**kwargs, name="layers")(x, bands, self_mask, enc, enc_mask,
                                                     positions)
            return x  # [B, T, D]
        for i in range(self.n_layers):
            x, _ = block(**kwargs, name=f"layer_{i}")(x, bands[i], self_mask, enc, enc_mask,
                                                      positions)
        return x  # [B, T, D]

    def _pipelined(self, pipe: pipeline.Pipeline, block, x, bands, self_mask, enc, enc_mask):
        """The scanned stack's own parameters (`layers`, [L, ...]) applied as pipeline stages
        of K = L / S layers. Each stage is the plain scan over its K blocks (remat per block
        as configured); with model.remat a stage also keeps only its input per microbatch
        and recomputes its forward in the backward pass (GPipe §2.3), so a stage holds
        M + S - 1 microbatch inputs rather than every block's input for every tick."""
        m = self.model
        layers = (self.variables["params"]["layers"], bands)  # [L, ...] params, [L] bands
        stage = _scanned(block, self.n_layers // pipe.stages, m.scan_unroll)(
            **self._block_kwargs(), parent=None)  # one stage's layers, unbound
        extras = {"self_mask": self_mask, "enc": enc, "enc_mask": enc_mask}
        rows = {k: v for k, v in extras.items()  # per-row arrays, or a MaskSpec of them
                if v is not None and jax.tree.leaves(v)[0].shape[0] == x.shape[0]}
        shared = {k: v for k, v in extras.items() if v is not None and k not in rows}

        def stage_fn(layers, h, rows, shared, key):
            params, stage_bands = layers  # [K, ...], [K]
            a = {**rows, **shared}
            h, _ = stage.apply({"params": params}, h, stage_bands, a["self_mask"], a.get("enc"),
                               a.get("enc_mask"), None, rngs={"dropout": key})
            return h  # [B, T, D]

        if m.remat != "none":  # keep the stage's input only; inside a scan CSE is harmless
            stage_fn = jax.checkpoint(stage_fn, prevent_cse=False)
        key = self.make_rng("dropout") if not self.deterministic else jax.random.key(0)
        return pipeline.gpipe(stage_fn, layers, x, rows, shared, key, pipe)  # [B, T, D]
