"""Direct oracles for the losses and metrics: NumPy cross entropy, z-loss, label smoothing,
MLM and NSP accuracy by NumPy argmax on one batch, and MFU from a fake clock.

Letter legend: B batch, T length, V vocab.
"""

import types

import jax.numpy as jnp
import numpy as np
import pytest

from scaling import metrics
from scaling.families import masked_lm
from scaling.models.losses import smoothed_token_losses, token_accuracy, token_losses

B, T, V = 3, 5, 7


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(B, T, V)).astype(np.float32) * 3  # [B, T, V]
    targets = rng.integers(0, V, size=(B, T))  # [B, T]
    # make about half the targets the argmax so accuracy is neither 0 nor 1
    best = logits.argmax(-1)
    targets = np.where(rng.random((B, T)) < 0.5, best, targets)
    weights = (rng.random((B, T)) < 0.7).astype(np.float32)  # [B, T]
    weights[0, 0] = 1.0
    return logits, targets, weights


def _log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def test_token_losses_and_z_loss_match_numpy():
    logits, targets, weights = _batch()
    logp = _log_softmax(logits)
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]  # [B, T]
    log_z = np.log(np.exp(logits.astype(np.float64)).sum(-1))  # [B, T]
    for z in (0.0, 0.3):
        total, weight = token_losses(jnp.asarray(logits), jnp.asarray(targets), weights, z)
        want = np.sum((nll + z * log_z**2) * weights)
        assert float(total) == pytest.approx(want, rel=1e-5)
        assert float(weight) == pytest.approx(weights.sum())
    default, _ = token_losses(jnp.asarray(logits), jnp.asarray(targets), weights)  # no z-loss
    assert float(default) == pytest.approx(np.sum(nll * weights), rel=1e-5)


def test_smoothed_losses_match_numpy():
    """Cross entropy against (1 − ε)·onehot + ε/V over the first `vocab` real columns."""
    logits, targets, weights = _batch(1)
    vocab, eps = V - 2, 0.1  # the last two columns are padding rows of the table
    targets = targets % vocab
    logp = _log_softmax(logits)
    q = np.full((B, T, V), eps / vocab)
    q[..., vocab:] = 0.0
    np.put_along_axis(q, targets[..., None], (1 - eps) + eps / vocab, -1)
    smoothed = -(q * logp).sum(-1)  # [B, T]
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    log_z = np.log(np.exp(logits.astype(np.float64)).sum(-1))
    for z in (0.0, 0.2):
        s, n, w = smoothed_token_losses(
            jnp.asarray(logits), jnp.asarray(targets), weights, eps, vocab, z
        )
        assert float(s) == pytest.approx(np.sum((smoothed + z * log_z**2) * weights), rel=1e-5)
        assert float(n) == pytest.approx(np.sum(nll * weights), rel=1e-5)
        assert float(w) == pytest.approx(weights.sum())
    s0, _, _ = smoothed_token_losses(jnp.asarray(logits), jnp.asarray(targets), weights, eps, vocab)
    assert float(s0) == pytest.approx(np.sum(smoothed * weights), rel=1e-5)  # no z-loss


def test_token_accuracy_is_a_numpy_argmax():
    logits, targets, weights = _batch(2)
    hits, count = token_accuracy(jnp.asarray(logits), jnp.asarray(targets), weights)
    want = np.sum((logits.argmax(-1) == targets) * weights)
    assert 0 < want < weights.sum() and want != weights.sum() - want  # inverting it shows
    assert float(hits) == want and float(count) == weights.sum()
    # a target tied for the maximum counts as a hit
    tied = np.zeros((1, 1, V), np.float32)
    tied[0, 0, [2, 4]] = 1.0
    for t, hit in ((2, 1.0), (4, 1.0), (3, 0.0)):
        h, _ = token_accuracy(jnp.asarray(tied), jnp.asarray([[t]]), np.ones((1, 1), np.float32))
        assert float(h) == hit


def test_masked_lm_accuracies_and_losses_match_numpy():
    """One BERT batch: mlm_accuracy and nsp_accuracy are NumPy argmax hit counts; the total
    is the MLM sum plus the NSP mean times the MLM weight (Devlin et al. 2019 §3.1)."""
    logits, targets, weights = _batch(3)
    rng = np.random.default_rng(4)
    nsp_logits = rng.normal(size=(8, 2)).astype(np.float32)  # [B', 2]
    labels = nsp_logits.argmax(-1)
    labels[[2, 5]] = 1 - labels[[2, 5]]  # 6 hits, 2 misses: an inverted count (2) differs
    batch = {
        "targets": jnp.asarray(targets),
        "weights": jnp.asarray(weights),
        "nsp_labels": jnp.asarray(labels),
    }
    out = masked_lm.loss((jnp.asarray(logits), jnp.asarray(nsp_logits)), batch)
    m = out.metrics
    mlm_hits = np.sum((logits.argmax(-1) == targets) * weights)
    nsp_hits = np.sum(nsp_logits.argmax(-1) == labels)
    assert nsp_hits == 6 and mlm_hits != weights.sum() - mlm_hits
    assert [float(x) for x in m["mlm_accuracy"]] == [mlm_hits, weights.sum()]
    assert [float(x) for x in m["nsp_accuracy"]] == [nsp_hits, len(labels)]
    nsp_nll = -np.take_along_axis(_log_softmax(nsp_logits), labels[:, None], -1)[:, 0]
    assert float(m["nsp_loss"][0]) == pytest.approx(nsp_nll.sum(), rel=1e-5)
    assert float(m["nsp_loss"][1]) == len(labels)
    mlm_nll = -np.take_along_axis(_log_softmax(logits), targets[..., None], -1)[..., 0]
    mlm_sum = np.sum(mlm_nll * weights)
    assert float(m["mlm_loss"][0]) == pytest.approx(mlm_sum, rel=1e-5)
    assert float(out.weight) == weights.sum()
    assert float(out.total) == pytest.approx(mlm_sum + nsp_nll.mean() * weights.sum(), rel=1e-5)
    without = masked_lm.loss(
        (jnp.asarray(logits), None), {k: batch[k] for k in batch if k != "nsp_labels"}
    )
    assert "nsp_accuracy" not in without.metrics
    assert float(without.total) == pytest.approx(mlm_sum, rel=1e-5)
    # the run's optim.z_loss reaches the MLM loss (PaLM §5: z · log²Z per selected token)
    config = types.SimpleNamespace(optim=types.SimpleNamespace(z_loss=0.3))
    with_z = masked_lm.loss((jnp.asarray(logits), jnp.asarray(nsp_logits)), batch, config)
    log_z = np.log(np.exp(logits.astype(np.float64)).sum(-1))
    z_sum = mlm_sum + 0.3 * np.sum(log_z**2 * weights)
    assert float(with_z.metrics["mlm_loss"][0]) == pytest.approx(z_sum, rel=1e-5)


class FakeClock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def test_mfu_from_a_fake_clock(monkeypatch):
    """MFU = tokens/s × FLOPs per token ÷ (peak per chip × chips) (PaLM App. B)."""
    clock = FakeClock(100.0)
    monkeypatch.setattr(metrics.time, "perf_counter", clock)
    monkeypatch.setattr(metrics, "device_peak_flops", lambda device=None: 2.0e9)
    tp = metrics.Throughput(flops_per_token=3.0e6, n_devices=4)
    assert tp.peak_name == "bf16 peak"
    clock.t = 102.5
    row = tp.update(tokens=1000)
    assert row["tokens_per_sec"] == pytest.approx(400.0)
    assert row["flops_per_sec"] == pytest.approx(400.0 * 3.0e6)
    assert row["mfu"] == pytest.approx(400.0 * 3.0e6 / (2.0e9 * 4))
    clock.t = 103.5  # the interval restarts at each update
    assert tp.update(tokens=100)["tokens_per_sec"] == pytest.approx(100.0)
    clock.t = 103.75  # a sub-second interval
    assert tp.update(tokens=100)["tokens_per_sec"] == pytest.approx(400.0)
    clock.t = 110.0
    tp.reset()
    clock.t = 112.0
    assert tp.update(tokens=100)["tokens_per_sec"] == pytest.approx(50.0)


def test_mfu_on_cpu_uses_the_host_matmul_rate(monkeypatch):
    clock = FakeClock(5.0)
    monkeypatch.setattr(metrics.time, "perf_counter", clock)
    monkeypatch.setattr(metrics, "device_peak_flops", lambda device=None: None)
    monkeypatch.setattr(metrics, "host_matmul_flops", lambda *a, **k: 1.0e9)
    tp = metrics.Throughput(flops_per_token=1.0e6, n_devices=8)
    assert tp.peak_name == "host f32 matmul" and tp.peak == 1.0e9  # one host, not × 8
    clock.t = 7.0
    assert tp.update(tokens=500)["mfu"] == pytest.approx(250.0 * 1.0e6 / 1.0e9)


@pytest.mark.parametrize(
    "kind,peak",
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("TPU v4", 275e12),
        ("TPU v5 lite", 197e12),
        ("TPU v5p", 459e12),
        ("NVIDIA A100-SXM4-40GB", 312e12),
        ("cpu", None),
    ],
)
def test_device_peak_table(kind, peak):
    """Published dense bf16 peaks (NVIDIA H100 SXM and A100 datasheets; Cloud TPU docs)."""
    assert metrics.device_peak_flops(types.SimpleNamespace(device_kind=kind)) == peak


def test_device_peak_defaults_to_the_first_device(monkeypatch):
    """No device given: the first of jax.devices() (a host may hold just one)."""
    one = [types.SimpleNamespace(device_kind="TPU v4")]
    monkeypatch.setattr(metrics.jax, "devices", lambda: one)
    assert metrics.device_peak_flops() == 275e12
