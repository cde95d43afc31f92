"""Pallas splash attention, the fused attention kernel on TPU, sharded over the mesh.

Letter legend: B batch, T query length, S key/value length, N heads, H head width.

Splash attention (jax.experimental.pallas.ops.tpu.splash_attention; the block-sparse flash
attention of Dao et al. 2022 with the mask known when tracing) skips the blocks a mask hides
and never stores the [T, S] probabilities. Its mask is static: the causal/band part is one
of two kernels chosen per layer (dense or banded, `lax.cond` on the scanned layer's band
width), the segment ids of packed documents travel as data. It runs on one device's share:
`splash_attention` wraps it in a shard_map with rows and heads split as the step's logical
rules lay out "batch" and "heads" (scaling/sharding.py: replica × data × fsdp, tensor). On
CPU the same kernel runs in Pallas interpret mode, which the tests compare against the XLA path.

No attention-probability dropout: the kernel has none (scaling/platform.py chooses).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax.experimental.pallas.ops.tpu import splash_attention as splash
from jax.sharding import PartitionSpec as P

from scaling.models.masks import MaskSpec

BLOCK = 512  # rows/columns of one kernel block (the library's default), cut to the length
TPU_MULTIPLE = 128  # on TPU, lengths must be a multiple of the 128-lane vector width


def _block_sizes(T: int, S: int) -> splash.BlockSizes:
    bq, bk = min(BLOCK, T), min(BLOCK, S)
    return splash.BlockSizes(
        block_q=bq,
        block_kv=bk,
        block_kv_compute=bk,
        block_q_dkv=bq,
        block_kv_dkv=bk,
        block_kv_dkv_compute=bk,
        block_q_dq=bq,
        block_kv_dq=bk,
        use_fused_bwd_kernel=False,
    )


def _kernel(N: int, T: int, S: int, causal: bool, band: int, interpret: bool):
    """The splash kernel for N heads of [T, S] attention: keys s may be seen from query t
    when (not causal or s <= t') and (band == 0 or |t' - s| < band), t' = t + S - T (queries
    aligned to the last T keys, as masks.causal_mask)."""
    if causal or band:
        left = band - 1 if band else None  # |t' - s| < band: t' - (band - 1) <= s
        right = 0 if causal else (band - 1)  # causal: s <= t'
        mask = splash.LocalMask((T, S), (left, right), offset=S - T)
    else:
        mask = splash.FullMask((T, S))
    # Built in the trace that calls it, never cached across traces (a kernel built in one
    # trace holds that trace's arrays); the mask tables are NumPy work on the block grid.
    with jax.ensure_compile_time_eval():
        return splash.make_splash_mha(
            splash.MultiHeadMask([mask] * N),
            head_shards=1,
            q_seq_shards=1,
            block_sizes=_block_sizes(T, S),
            interpret=interpret,
        )


def _local(q, k, v, q_seg, k_seg, band, *, causal: bool, width: int, interpret: bool):
    """One device's share: q [B, N, T, H], k/v [B, N, S, H], segments [B, T] / [B, S]; band
    traced (0 or `width`). Returns [B, N, T, H]."""
    N, T, S = q.shape[1], q.shape[2], k.shape[2]

    def run(kernel):
        def one(q, k, v, qs, ks):  # one row: [N, T, H]
            return kernel(q, k, v, segment_ids=splash.SegmentIds(qs, ks))

        return jax.vmap(one)(q, k, v, q_seg, k_seg)  # [B, N, T, H]

    dense = functools.partial(run, _kernel(N, T, S, causal, 0, interpret))
    if not width:
        return dense()
    banded = functools.partial(run, _kernel(N, T, S, causal, width, interpret))
    return jax.lax.cond(band == 0, dense, banded)


def splash_attention(
    q,
    k,
    v,
    spec: MaskSpec,
    band=None,
    *,
    width: int = 0,
    scale: float | None = None,
    interpret: bool = False,
) -> jax.Array:
    """softmax(scale · q kᵀ + mask) v by the splash kernel; the same contract as
    attention.dot_product_attention with the mask given by `spec` and `band` (a layer's band
    width, traced: 0 or `width`, the configured model.local_window).

    q: [B, T, N, H]; k, v: [B, S, N, H]. Returns [B, T, N, H]. Fully masked query rows
    (padding that no key shares a segment with) are left to the kernel: their outputs differ
    from the XLA path's, and the losses give them no weight.
    """
    scale = 1.0 / float(q.shape[-1]) ** 0.5 if scale is None else scale
    q = (q * jnp.asarray(scale, q.dtype)).transpose(0, 2, 1, 3)  # [B, N, T, H]
    k, v = k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3)  # [B, N, S, H]
    band = jnp.asarray(0 if band is None else band, jnp.int32)
    fn = functools.partial(_local, causal=spec.causal, width=width, interpret=interpret)
    args = (q, k, v, spec.q_segments.astype(jnp.int32), spec.k_segments.astype(jnp.int32), band)
    mesh = jax.sharding.get_abstract_mesh()
    free = set() if mesh.empty else set(mesh.axis_names) - set(mesh.manual_axes)
    # rows and heads laid out as the step's logical rules say (scaling/sharding.py)
    rows, heads = (_axes(a, free) for a in nn.logical_to_mesh_axes(("batch", "heads")))
    if rows or heads:
        q_spec, seg = P(rows, heads, None, None), P(rows, None)
        fn = jax.shard_map(
            fn,
            mesh=mesh,
            in_specs=(q_spec, q_spec, q_spec, seg, seg, P()),
            out_specs=q_spec,
            axis_names={*(rows or ()), *(heads or ())},
            check_vma=False,
        )
    out = fn(*args)  # [B, N, T, H]
    return out.transpose(0, 2, 1, 3)  # [B, T, N, H]


def _axes(entry, free: set) -> tuple[str, ...] | None:
    """The mesh axes of one logical-rule entry that this shard_map may split over."""
    names = (entry,) if isinstance(entry, str) else tuple(entry or ())
    kept = tuple(a for a in names if a in free)
    return kept or None
