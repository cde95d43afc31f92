"""The model's dropout keeps about 1 − p of its activations, measured through the real model
code: every `nn.Dropout` a GPT forward pass calls (embedding, residual, MLP) is intercepted,
and the attention-probability dropout is re-run through the model's own attention function
with the exact key, rate and inputs the model passed it.

Letter legend: B batch, T length, S keys, N heads, H head width, D model width.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models import attention
from scaling.models.gpt import GPT

B, T, P, P_ATTN = 8, 32, 0.3, 0.2
MODEL = ModelConfig(
    vocab_size=64,
    n_layers=2,
    d_model=32,
    n_heads=4,
    d_ff=64,
    max_len=T,
    dropout=P,
    attn_dropout=P_ATTN,
    scan_layers=False,
    dtype="float32",
)


def _forward(monkeypatch, deterministic: bool):
    """Run GPT once; return the nn.Dropout calls (path, input, output) and the arguments
    of each call to the attention function."""
    drops, attn_calls = [], []
    real = attention.dot_product_attention

    def spy(q, k, v, mask, **kw):
        attn_calls.append((q, k, v, mask, kw))
        return real(q, k, v, mask, **kw)

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, nn.Dropout):
            drops.append((context.module.scope.path, np.asarray(args[0]), np.asarray(out)))
        return out

    ids = np.random.default_rng(0).integers(0, MODEL.vocab_size, (B, T)).astype(np.int32)
    gpt = GPT(MODEL, deterministic=deterministic)
    params = jax.jit(gpt.init)(jax.random.key(0), ids)
    monkeypatch.setattr(attention, "dot_product_attention", spy)
    with nn.intercept_methods(record):
        gpt.apply(params, ids, rngs={"dropout": jax.random.key(1)})
    return drops, attn_calls


def _dropped(x, y, p):
    """Fraction of nonzero inputs zeroed; survivors must be scaled by 1 / (1 − p)."""
    live = x != 0
    zero = (y == 0) & live
    np.testing.assert_allclose(y[live & ~zero], x[live & ~zero] / (1 - p), rtol=1e-5)
    return zero.sum() / live.sum(), live.sum()


@pytest.mark.slow  # an eager forward pass: ~10 s alone, up to 40 s on a loaded 2-core VM
def test_embedding_residual_and_mlp_dropout_keep_one_minus_p(monkeypatch):
    drops, _ = _forward(monkeypatch, deterministic=False)
    paths = [path for path, _, _ in drops]
    assert ("Dropout_0",) in paths  # the embedding dropout (GPT-1 §4.1, GPT-2)
    for layer in ("layer_0", "layer_1"):  # two residual branches and the MLP per layer
        assert ("decoder", layer, "Dropout_0") in paths
        assert ("decoder", layer, "Dropout_1") in paths
        assert ("decoder", layer, "mlp", "Dropout_0") in paths
    for path, x, y in drops:
        rate, n = _dropped(x, y, P)
        assert abs(rate - P) < 5 * np.sqrt(P * (1 - P) / n), (path, rate)  # 5 std errors


@pytest.mark.slow
def test_attention_dropout_keeps_one_minus_p(monkeypatch):
    """Re-run each layer's attention call with values = the identity on keys, so the output
    is the dropped-out probability matrix itself; compare with the rate-0 probabilities."""
    _, calls = _forward(monkeypatch, deterministic=False)
    monkeypatch.undo()  # the real attention function again
    assert len(calls) == MODEL.n_layers
    total_zero = total_live = 0
    for q, k, _, mask, kw in calls:
        assert kw["dropout_rate"] == P_ATTN and kw["dropout_rng"] is not None
        S, N = k.shape[1], k.shape[2]
        eye = jnp.broadcast_to(jnp.eye(S)[None, :, None, :], (q.shape[0], S, N, S))  # [B,S,N,S]
        dropped = np.asarray(attention.dot_product_attention(q, k, eye, mask, **kw))
        clean = np.asarray(
            attention.dot_product_attention(q, k, eye, mask, scale=kw.get("scale"))
        )  # [B, T, N, S]
        zero = (dropped == 0) & (clean > 0)
        kept = (dropped != 0) & (clean > 0)
        np.testing.assert_allclose(dropped[kept], clean[kept] / (1 - P_ATTN), rtol=1e-4)
        total_zero += zero.sum()
        total_live += (clean > 0).sum()
    rate = total_zero / total_live
    assert abs(rate - P_ATTN) < 5 * np.sqrt(P_ATTN * (1 - P_ATTN) / total_live), rate


def test_deterministic_forward_drops_nothing(monkeypatch):
    drops, calls = _forward(monkeypatch, deterministic=True)
    for path, x, y in drops:
        np.testing.assert_array_equal(x, y, err_msg=str(path))
    assert all(kw["dropout_rate"] == 0.0 for *_, kw in calls)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_attention_function_drop_rate(rate):
    """The attention function alone: uniform probabilities 1/S (q = 0), values = identity."""
    Bq, Tq, S, N = 4, 16, 64, 4
    q = jnp.zeros((Bq, Tq, N, 8))
    k = jnp.zeros((Bq, S, N, 8))
    eye = jnp.broadcast_to(jnp.eye(S)[None, :, None, :], (Bq, S, N, S))
    out = np.asarray(
        attention.dot_product_attention(
            q, k, eye, None, dropout_rate=rate, dropout_rng=jax.random.key(3)
        )
    )  # [B, T, N, S]
    n = out.size
    assert abs(np.mean(out == 0) - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(out[out != 0], 1 / S / (1 - rate), rtol=1e-5)
