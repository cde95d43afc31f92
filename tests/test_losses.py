"""The shared token loss against NumPy: weighted cross entropy plus PaLM's z-loss."""

import jax.numpy as jnp
import numpy as np
import pytest

from scaling.models.losses import token_losses


@pytest.mark.parametrize("z", [0.0, 1e-4, 0.1])
def test_token_losses_match_numpy(z):
    r = np.random.default_rng(0)
    logits = r.normal(size=(2, 5, 11)).astype(np.float32) * 3
    logits[..., 9:] = -1e30  # padded vocabulary rows, masked as the model does
    targets = r.integers(0, 9, (2, 5))
    weights = (r.random((2, 5)) > 0.3).astype(np.float32)
    total, weight = token_losses(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights), z)
    expect = 0.0
    for b in range(2):
        for t in range(5):
            real = logits[b, t, :9].astype(np.float64)
            log_z = np.log(np.exp(real - real.max()).sum()) + real.max()
            expect += weights[b, t] * (log_z - real[targets[b, t]] + z * log_z**2)
    assert float(total) == pytest.approx(expect, rel=1e-5)
    assert float(weight) == weights.sum()
