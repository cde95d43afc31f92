"""Sampling against its distribution, not one draw: 40,000 rows of the same logits drawn at
once through `scaling.models.decoding.sample` (the function `generate` calls each step),
their frequencies compared with softmax(logits / T) restricted to top-k / the nucleus.

Letter legend: B rows, V vocab.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.models.decoding import nucleus, sample

LOGITS = np.array([2.0, 1.0, 0.5, 0.0, -1.0], np.float32)  # [V]
ROWS = 40_000


def _frequencies(temperature, top_k=0, top_p=1.0, seed=0):
    logits = jnp.broadcast_to(jnp.asarray(LOGITS), (ROWS, len(LOGITS)))  # [B, V]
    draws = np.asarray(sample(logits, jax.random.key(seed), temperature, top_k, top_p))
    return np.bincount(draws, minlength=len(LOGITS)) / ROWS


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _close(freq, probs):
    """Each class within 5 binomial standard errors (and never drawn when p = 0)."""
    se = np.sqrt(probs * (1 - probs) / ROWS)
    assert np.all(np.abs(freq - probs) <= 5 * se + 1e-12), (freq, probs)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_sampling_follows_softmax_of_logits_over_temperature(temperature):
    _close(_frequencies(temperature), _softmax(LOGITS.astype(np.float64) / temperature))


def test_low_temperature_sharpens_and_high_flattens():
    """T = 0.5 puts more mass on the top token than T = 1, T = 2 less (logits · T would
    do the opposite)."""
    top = [_frequencies(t)[0] for t in (0.5, 1.0, 2.0)]
    assert top[0] > top[1] > top[2]


def test_top_k_renormalizes_over_the_k_best():
    probs = _softmax(LOGITS[:2].astype(np.float64) / 0.7)
    _close(_frequencies(0.7, top_k=2), np.concatenate([probs, np.zeros(3)]))
    _close(_frequencies(1.0, top_k=99), _softmax(LOGITS.astype(np.float64)))  # k > V: all


def test_nucleus_keeps_the_smallest_set_reaching_p():
    """Holtzman et al. 2020 §3.1: the most likely tokens until their mass reaches top_p."""
    probs = _softmax(LOGITS.astype(np.float64))  # ≈ [0.55, 0.20, 0.12, 0.07, 0.03]
    cum = np.cumsum(probs)
    for top_p in (0.5, 0.7, 0.9):
        n_keep = int(np.searchsorted(cum, top_p) + 1)  # mass before the last < top_p
        want = np.zeros_like(probs)
        want[:n_keep] = probs[:n_keep] / probs[:n_keep].sum()
        _close(_frequencies(1.0, top_p=top_p, seed=3), want)
        kept = np.isfinite(np.asarray(nucleus(jnp.asarray(LOGITS)[None], top_p))[0])
        np.testing.assert_array_equal(kept, np.arange(len(LOGITS)) < n_keep)


def test_temperature_zero_is_greedy():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(64, 9)), jnp.float32)
    got = np.asarray(sample(logits, jax.random.key(0), 0.0, 0))
    np.testing.assert_array_equal(got, np.asarray(logits).argmax(-1))
