"""Every mask helper against a NumPy loop over (query, key) pairs, including the shapes the
decoder uses (queries aligned to the last keys, a decode cache, bands by position), and the
banded-layer rule the stack and the FLOP accounting share.

Letter legend: B batch, T queries, S keys.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from scaling.models.attention import (
    band_mask,
    causal_mask,
    decode_mask,
    local_mask,
    padding_mask,
    segment_mask,
)
from scaling.models.bands import band_widths, banded_layers


def _pairs(T, S, rule):
    """[T, S] bool from a Python rule over (t, s), queries aligned to the last T keys."""
    return np.array([[rule(t + S - T, s) for s in range(S)] for t in range(T)])


@pytest.mark.parametrize("T,S", [(5, 5), (3, 7), (1, 4)])
def test_causal_mask_by_loop(T, S):
    got = np.asarray(causal_mask(T, S if S != T else None))
    assert got.shape == (1, 1, T, S)
    np.testing.assert_array_equal(got[0, 0], _pairs(T, S, lambda q, k: k <= q))


@pytest.mark.parametrize("T,S,r", [(6, 6, 2), (4, 9, 3), (6, 6, 1), (5, 5, 0)])
def test_local_mask_by_loop(T, S, r):
    got = np.asarray(local_mask(T, S, r))[0, 0]
    want = _pairs(T, S, lambda q, k: r == 0 or abs(q - k) < r)
    np.testing.assert_array_equal(got, want)


def test_padding_and_segment_masks_by_loop():
    valid = np.array([[1, 1, 0, 1], [0, 1, 1, 1]], bool)  # [B, S]
    got = np.asarray(padding_mask(valid))
    assert got.shape == (2, 1, 1, 4)
    np.testing.assert_array_equal(got[:, 0, 0], valid)
    q_seg = np.array([[1, 1, 2], [3, 0, 3]])  # [B, T]
    k_seg = np.array([[1, 2, 2, 0], [3, 3, 0, 1]])  # [B, S]
    got = np.asarray(segment_mask(q_seg, k_seg))
    assert got.shape == (2, 1, 3, 4)
    for b in range(2):
        want = np.array([[q_seg[b, t] == k_seg[b, s] for s in range(4)] for t in range(3)])
        np.testing.assert_array_equal(got[b, 0], want)


def test_decode_and_band_masks_by_position():
    """A decode cache of S slots: the query at position p sees slots 0..p, and within a band
    of width r only slots with |p - s| < r (r = 0: all)."""
    S = 8
    q_pos = np.array([[0], [3], [7]])  # [B, T = 1]
    got = np.asarray(decode_mask(q_pos, S))
    assert got.shape == (3, 1, 1, S)
    for b, p in enumerate(q_pos[:, 0]):
        np.testing.assert_array_equal(got[b, 0, 0], np.arange(S) <= p)
    slots = np.broadcast_to(np.arange(S), (3, S))
    for r in (0, 1, 3):
        got = np.asarray(band_mask(q_pos, slots, r))
        assert got.shape == (3, 1, 1, S)
        for b, p in enumerate(q_pos[:, 0]):
            want = np.ones(S, bool) if r == 0 else np.abs(p - np.arange(S)) < r
            np.testing.assert_array_equal(got[b, 0, 0], want, err_msg=f"r={r} p={p}")


@pytest.mark.parametrize(
    "window,every,n,want",
    [
        (0, 2, 4, [0, 0, 0, 0]),
        (4, 1, 3, [1, 1, 1]),
        (4, 2, 5, [0, 1, 0, 1, 0]),
        (4, 3, 7, [0, 1, 0, 0, 1, 0, 0]),
        (1, 2, 4, [0, 1, 0, 1]),  # a band of width 1: each query sees only itself
    ],
)
def test_banded_layers_follow_gpt3_alternation(window, every, n, want):
    """GPT-3 §2.1: dense and locally banded layers alternate; layer l is banded when
    l % every == 1 (every = 1: all layers)."""
    banded = banded_layers(window, every, n)
    assert banded.dtype == bool  # a mask: `~banded` and indexing rely on it
    np.testing.assert_array_equal(banded, np.array(want, bool))
    model = SimpleNamespace(local_window=window, local_every=every)
    widths = band_widths(model, n)
    assert widths.dtype == np.int32
    np.testing.assert_array_equal(widths, np.array(want) * window)
