"""GPU only: cuDNN's fused attention gives the XLA path's results (skipped elsewhere)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models import gpt
from scaling.models.attention import Attention, MaskSpec, causal_mask, segment_mask

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU (cuDNN)"),
]


@pytest.mark.parametrize("packed", [False, True])
def test_cudnn_attention_equals_xla(packed):
    B, T, D, N = 2, 128, 256, 4
    x = jax.random.normal(jax.random.key(0), (B, T, D), jnp.bfloat16)
    seg = jnp.ones((B, T), jnp.int32)
    if packed:
        seg = seg.at[:, T // 3:].set(2).at[:, 2 * T // 3:].set(3)
    mask = causal_mask(T) & segment_mask(seg, seg)
    xla = Attention(N, dtype=jnp.bfloat16, implementation="xla")
    cudnn = dataclasses.replace(xla, implementation="cudnn")
    params = xla.init(jax.random.key(1), x, x, mask)
    a = xla.apply(params, x, x, mask, causal=True)
    b = cudnn.apply(params, x, x, mask, causal=True)
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32),
                               rtol=2e-2, atol=2e-2)


def test_gpt_logits_equal_across_attention_paths():
    model = ModelConfig(vocab_size=512, n_layers=2, d_model=256, n_heads=4, d_ff=1024,
                        max_len=128, dtype="bfloat16", dropout=0.0, attn_dropout=0.0)
    ids = jax.random.randint(jax.random.key(0), (2, 128), 0, 512)
    params = nn.unbox(gpt.GPT(model).init(jax.random.key(1), ids))
    a = gpt.GPT(model, implementation="xla").apply(params, ids)
    b = gpt.GPT(model, implementation="cudnn").apply(params, ids)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=5e-2, atol=5e-2)


@pytest.mark.parametrize("band", [0, 48])
def test_cudnn_with_segments_band_and_cross_attention_equals_xla(band):
    """The MaskSpec path: causal + packed documents + a band (self-attention), and
    cross-attention of two lengths with segments, through `attention_mask` into cuDNN."""
    B, T, S, D, N = 2, 128, 256, 256, 4
    x = jax.random.normal(jax.random.key(0), (B, T, D), jnp.bfloat16)
    enc = jax.random.normal(jax.random.key(2), (B, S, D), jnp.bfloat16)
    seg = jnp.ones((B, T), jnp.int32).at[0, 50:].set(2)
    src = jnp.ones((B, S), jnp.int32).at[0, 100:].set(2)
    xla = Attention(N, dtype=jnp.bfloat16, implementation="xla", band_width=48)
    cudnn = dataclasses.replace(xla, implementation="cudnn")
    for q, kv, spec, b in ((x, x, MaskSpec(seg, seg, causal=True), jnp.int32(band)),
                           (x, enc, MaskSpec(seg, src), None)):
        params = xla.init(jax.random.key(1), q, kv, spec, band=b)
        a = xla.apply(params, q, kv, spec, band=b)
        c = cudnn.apply(params, q, kv, spec, band=b)
        np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(c, np.float32),
                                   rtol=2e-2, atol=2e-2)
