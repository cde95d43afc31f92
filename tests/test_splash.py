"""The TPU splash kernel, run in Pallas interpret mode on CPU, equals the XLA path: outputs
and gradients, f32 to 1e-5, for causal self-attention over packed documents with GPT-3's
band (dense and banded layers through the same traced width), for cross-attention of two
lengths, and sharded over a data × fsdp × tensor mesh of the 8 simulated devices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from scaling.config import MeshConfig
from scaling.models import splash
from scaling.models.attention import dot_product_attention
from scaling.models.masks import MaskSpec, attention_mask
from scaling.sharding import axis_rules, make_mesh

WIDTH = 48  # the band of banded layers (model.local_window)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """128-row blocks, so 256-long sequences span several blocks and the kernel's block
    skipping (fully masked blocks) is exercised."""
    monkeypatch.setattr(splash, "BLOCK", 128)


def _qkv(B, T, S, N=2, H=32):
    kq, kk, kv, kc = jax.random.split(jax.random.key(0), 4)
    q = jax.random.normal(kq, (B, T, N, H), jnp.float32)
    k = jax.random.normal(kk, (B, S, N, H), jnp.float32)
    v = jax.random.normal(kv, (B, S, N, H), jnp.float32)
    return q, k, v, jax.random.normal(kc, (B, T, N, H), jnp.float32)


def _value_and_grads(attend, q, k, v, cot):
    """Output and d(<out, cot>)/d(q, k, v): the cotangent makes every output entry count."""

    def loss(q, k, v):
        out = attend(q, k, v)
        return jnp.sum(out * cot), out

    (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(q, k, v)
    return out, grads


def _assert_equal(a, b):
    out_a, grads_a = a
    out_b, grads_b = b
    np.testing.assert_allclose(out_b, out_a, rtol=1e-5, atol=1e-5)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        np.testing.assert_allclose(gb, ga, rtol=1e-5, atol=1e-5)


def test_causal_packed_banded_self_attention_equals_xla():
    B, T = 2, 256
    q, k, v, cot = _qkv(B, T, T)
    # row 0: two documents (one crossing a block edge); row 1: one document, then padding
    seg = jnp.ones((B, T), jnp.int32).at[0, 100:].set(2).at[1, 200:].set(0)
    spec = MaskSpec(seg, seg, causal=True)

    @jax.jit
    def both(band):
        xla = _value_and_grads(
            lambda q, k, v: dot_product_attention(q, k, v, attention_mask(spec, band)), q, k, v, cot
        )
        fused = _value_and_grads(
            lambda q, k, v: splash.splash_attention(
                q, k, v, spec, band, width=WIDTH, interpret=True
            ),
            q,
            k,
            v,
            cot,
        )
        return xla, fused

    for band in (0, WIDTH):  # a dense and a banded layer of one scanned stack
        _assert_equal(*both(jnp.int32(band)))


def test_cross_attention_of_two_lengths_equals_xla():
    B, T, S = 2, 128, 256
    q, k, v, cot = _qkv(B, T, S)
    q_seg = jnp.ones((B, T), jnp.int32).at[0, 64:].set(2)
    k_seg = jnp.ones((B, S), jnp.int32).at[0, 128:].set(2).at[1, 192:].set(0)
    spec = MaskSpec(q_seg, k_seg)
    xla = _value_and_grads(
        lambda q, k, v: dot_product_attention(q, k, v, attention_mask(spec)), q, k, v, cot
    )
    fused = _value_and_grads(
        lambda q, k, v: splash.splash_attention(q, k, v, spec, interpret=True), q, k, v, cot
    )
    _assert_equal(xla, fused)


def test_sharded_over_rows_and_heads_equals_xla():
    """Inside the train step's mesh the kernel runs per device under shard_map: rows over
    data × fsdp, heads over tensor (scaling/sharding.py's layout)."""
    mesh = make_mesh(MeshConfig(data=2, fsdp=2, tensor=2))  # Auto axes, as the train step
    B, T = 4, 128
    q, k, v, cot = _qkv(B, T, T, N=4)
    seg = jnp.ones((B, T), jnp.int32).at[:, 50:].set(2)
    spec = MaskSpec(seg, seg, causal=True)
    heads = NamedSharding(mesh, P(("replica", "data", "fsdp"), None, "tensor", None))
    q, k, v, cot = (jax.device_put(a, heads) for a in (q, k, v, cot))

    @jax.jit
    def fused(q, k, v):
        with axis_rules(mesh), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return _value_and_grads(
                lambda q, k, v: splash.splash_attention(q, k, v, spec, interpret=True), q, k, v, cot
            )

    lowered = fused.lower(q, k, v).as_text()
    assert "shard_map" in lowered or "manual" in lowered  # the kernel runs per device
    xla = _value_and_grads(
        lambda q, k, v: dot_product_attention(q, k, v, attention_mask(spec)), q, k, v, cot
    )
    _assert_equal(xla, fused(q, k, v))


@pytest.mark.slow
def test_banded_gpt_through_the_model_equals_xla():
    """A 2-layer GPT-3-style stack (layer 1 banded, chosen per scanned layer) over packed
    rows: logits and parameter gradients of the splash path equal the XLA path's."""
    from flax import linen as nn

    from scaling.config import ModelConfig
    from scaling.models.gpt import GPT

    m = ModelConfig(
        vocab_size=64,
        n_layers=2,
        d_model=32,
        n_heads=2,
        d_ff=64,
        max_len=128,
        dtype="float32",
        dropout=0.0,
        attn_dropout=0.0,
        local_window=WIDTH,
    )
    ids = jax.random.randint(jax.random.key(0), (2, 128), 0, 64)
    seg = jnp.ones((2, 128), jnp.int32).at[0, 70:].set(2)
    params = nn.unbox(GPT(m).init(jax.random.key(1), ids, segment_ids=seg))

    def loss(params, implementation):
        logits = GPT(m, implementation=implementation).apply(params, ids, segment_ids=seg)
        return jnp.mean(jax.nn.log_softmax(logits)[..., 0]), logits

    grad = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)
    (ga, la), (gb, lb) = grad(params, "xla"), grad(params, "splash-interpret")
    np.testing.assert_allclose(lb, la, rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(ga), jax.tree.leaves(gb), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)
