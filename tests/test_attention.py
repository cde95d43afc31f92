"""Attention against a plain NumPy reference, one test per mask type, and cross-attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.models.attention import (
    Attention,
    causal_mask,
    dot_product_attention,
    local_mask,
    padding_mask,
    segment_mask,
)

B, T, N, H = 2, 7, 3, 4


def np_attention(q, k, v, allowed):
    """Reference: loops over batch, head and query; allowed[b, t, s] says who may be seen."""
    out = np.zeros_like(q)
    for b in range(q.shape[0]):
        for n in range(q.shape[2]):
            for t in range(q.shape[1]):
                keys = [s for s in range(k.shape[1]) if allowed[b, t, s]]
                scores = np.array([q[b, t, n] @ k[b, s, n] for s in keys]) / np.sqrt(q.shape[-1])
                p = np.exp(scores - scores.max())
                p /= p.sum()
                out[b, t, n] = sum(pi * v[b, s, n] for pi, s in zip(p, keys, strict=True))
    return out


def qkv(seed=0, S=T):
    r = np.random.default_rng(seed)
    return (r.normal(size=(B, T, N, H)).astype(np.float32),
            r.normal(size=(B, S, N, H)).astype(np.float32),
            r.normal(size=(B, S, N, H)).astype(np.float32))


SEGMENTS = np.array([[1, 1, 1, 2, 2, 3, 3], [1, 1, 1, 1, 1, 1, 0]])
VALID = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]], bool)


def allowed_causal(b, t, s):
    return s <= t


def allowed_padding(b, t, s):
    return VALID[b, s]


def allowed_segment(b, t, s):
    return SEGMENTS[b, t] == SEGMENTS[b, s]


def allowed_band(b, t, s, r=3):
    return abs(t - s) < r


CASES = {
    "causal": (lambda: causal_mask(T), [allowed_causal]),
    "padding": (lambda: padding_mask(jnp.asarray(VALID)), [allowed_padding]),
    "segment": (lambda: segment_mask(jnp.asarray(SEGMENTS), jnp.asarray(SEGMENTS)),
                [allowed_segment]),
    "band": (lambda: local_mask(T, T, 3), [allowed_band]),
    "causal&segment&band": (
        lambda: causal_mask(T) & segment_mask(jnp.asarray(SEGMENTS), jnp.asarray(SEGMENTS))
        & local_mask(T, T, 3),
        [allowed_causal, allowed_segment, allowed_band]),
    "causal&padding": (lambda: causal_mask(T) & padding_mask(jnp.asarray(VALID)),
                       [allowed_causal, allowed_padding]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_attention_matches_numpy(name):
    make_mask, rules = CASES[name]
    q, k, v = qkv()
    allowed = np.array([[[all(rule(b, t, s) for rule in rules) for s in range(T)]
                         for t in range(T)] for b in range(B)])
    out = dot_product_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), make_mask())
    # rows with no visible key (none here) would differ; every row here sees itself or a key
    assert allowed.any(axis=-1).all()
    np.testing.assert_allclose(np.asarray(out), np_attention(q, k, v, allowed),
                               rtol=1e-5, atol=1e-6)


def test_band_zero_means_dense():
    assert bool(jnp.all(local_mask(T, T, 0)))


def test_fully_masked_rows_stay_finite():
    q, k, v = qkv()
    out = dot_product_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v),
                                jnp.zeros((1, 1, T, T), bool))
    assert np.isfinite(np.asarray(out)).all()


def test_cross_attention_module_matches_numpy():
    """Queries from a decoder of length T attend to an encoder of length S=5 with padding."""
    S, D = 5, N * H
    r = np.random.default_rng(1)
    x = r.normal(size=(B, T, D)).astype(np.float32)
    enc = r.normal(size=(B, S, D)).astype(np.float32)
    valid = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    mod = Attention(n_heads=N)
    mask = padding_mask(jnp.asarray(valid))
    params = mod.init(jax.random.key(0), x, enc, mask)["params"]
    params = jax.tree.map(lambda p: np.asarray(p.value if hasattr(p, "value") else p), params,
                          is_leaf=lambda p: hasattr(p, "value"))
    # perturb biases so they are exercised
    params = jax.tree.map(lambda p: p + 0.1 * r.normal(size=p.shape).astype(np.float32), params)
    out = mod.apply({"params": params}, x, enc, mask)

    def proj(name, inp):
        return np.einsum("btd,dnh->btnh", inp, params[name]["kernel"]) + params[name]["bias"]

    q, k, v = proj("query", x), proj("key", enc), proj("value", enc)
    allowed = np.broadcast_to(valid[:, None, :], (B, T, S))
    heads = np_attention(q, k, v, allowed)
    ref = np.einsum("btnh,nhd->btd", heads, params["out"]["kernel"]) + params["out"]["bias"]
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-5)
