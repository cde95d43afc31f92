"""Properties of the whole GPT model: causality, padding invariance, the band's reach,
and invariances of the stack (scan == unrolled, remat == no remat)."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.families import causal_lm
from scaling.models import gpt

SMALL = ModelConfig(vocab_size=64, n_layers=3, d_model=32, n_heads=4, d_ff=64, max_len=32,
                    dropout=0.0, attn_dropout=0.0)


def init(model, T=16, seed=0):
    ids = jnp.zeros((1, T), jnp.int32)
    params = gpt.GPT(model).init(jax.random.key(seed), ids)["params"]
    return nn.unbox(params)


@functools.cache
def _apply(model):
    return jax.jit(gpt.GPT(model).apply)


def logits(model, params, ids, positions=None, segments=None):
    return np.asarray(_apply(model)({"params": params}, jnp.asarray(ids), positions, segments))


def random_ids(T=16, B=2, seed=0):
    return np.random.default_rng(seed).integers(0, SMALL.vocab_size, (B, T)).astype(np.int32)


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_future_tokens_never_change_earlier_logits(norm):
    model = dataclasses.replace(SMALL, norm=norm)
    params = init(model)
    ids = random_ids()
    base = logits(model, params, ids)
    for t in (3, 9, 15):
        changed = ids.copy()
        changed[:, t:] = (changed[:, t:] + 7) % model.vocab_size
        out = logits(model, params, changed)
        np.testing.assert_array_equal(out[:, :t], base[:, :t])
        assert not np.allclose(out[:, t], base[:, t])


def test_padding_never_changes_real_positions():
    """A row padded with segment 0 gives the real positions the logits of the unpadded row."""
    params = init(SMALL)
    ids = random_ids(T=10, B=1)
    real = logits(SMALL, params, ids)
    padded_ids = np.concatenate([ids, np.full((1, 6), 5, np.int32)], axis=1)
    seg = np.array([[1] * 10 + [0] * 6], np.int32)
    pos = np.array([list(range(10)) + [0] * 6], np.int32)
    out = logits(SMALL, params, padded_ids, pos, seg)
    np.testing.assert_allclose(out[:, :10], real, rtol=1e-5, atol=1e-5)


def test_packed_documents_do_not_see_each_other():
    """Two documents packed in one row score exactly as each alone."""
    params = init(SMALL)
    a, b = random_ids(T=7, B=1, seed=1), random_ids(T=9, B=1, seed=2)
    packed = np.concatenate([a, b], axis=1)
    seg = np.array([[1] * 7 + [2] * 9], np.int32)
    pos = np.array([list(range(7)) + list(range(9))], np.int32)
    out = logits(SMALL, params, packed, pos, seg)
    np.testing.assert_allclose(out[:, :7], logits(SMALL, params, a), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 7:], logits(SMALL, params, b), rtol=1e-5, atol=1e-5)


def test_band_limits_receptive_field():
    """One banded layer of width r: position t depends on tokens t-r+1..t only."""
    r, T = 4, 16
    model = dataclasses.replace(SMALL, n_layers=1, local_window=r, local_every=1)
    params = init(model, T)
    ids = random_ids(T)
    base = logits(model, params, ids)
    for s in range(T):
        changed = ids.copy()
        changed[:, s] = (changed[:, s] + 1) % model.vocab_size
        diff = np.abs(logits(model, params, changed) - base).max(axis=(0, 2))  # [T]
        affected = set(np.nonzero(diff > 0)[0])
        assert affected == set(range(s, min(s + r, T))), (s, affected)


@pytest.mark.slow
def test_alternating_layers_stack_their_reach():
    """GPT-3 alternation with local_every=2 and 2 layers: layer 0 dense, layer 1 banded, so the
    last position still sees the first token (the dense layer carries it forward)."""
    model = dataclasses.replace(SMALL, n_layers=2, local_window=2, local_every=2)
    params = init(model)
    ids = random_ids()
    changed = ids.copy()
    changed[:, 0] += 1
    assert not np.allclose(logits(model, params, changed)[:, -1], logits(model, params, ids)[:, -1])


def unstack(params, n_layers):
    """Scanned params [L, ...] -> the unrolled layout layer_0 ... layer_{L-1}."""
    layers = params["decoder"]["layers"]
    out = dict(params)
    out["decoder"] = {f"layer_{i}": jax.tree.map(lambda x, i=i: x[i], layers)
                      for i in range(n_layers)}
    return out


def test_scan_equals_unrolled():
    params = init(SMALL)
    ids = random_ids()
    unrolled = dataclasses.replace(SMALL, scan_layers=False)
    np.testing.assert_allclose(logits(unrolled, unstack(params, SMALL.n_layers), ids),
                               logits(SMALL, params, ids), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["full", "dots", "dots_no_batch"])
def test_remat_equals_no_remat(policy):
    params = init(SMALL)
    ids = jnp.asarray(random_ids())
    batch = {"inputs": ids, "targets": jnp.roll(ids, -1, axis=1),
             "positions": jnp.broadcast_to(jnp.arange(16), (2, 16)),
             "segment_ids": jnp.ones_like(ids), "weights": jnp.ones(ids.shape, jnp.float32)}

    def grads(model):
        def loss(p):
            logits = gpt.GPT(model).apply({"params": p}, batch["inputs"], batch["positions"],
                                          batch["segment_ids"])
            return causal_lm.loss(logits, batch).total

        fn = jax.jit(jax.grad(loss))
        return fn(params)

    ref = grads(SMALL)
    got = grads(dataclasses.replace(SMALL, remat=policy))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, ref)
