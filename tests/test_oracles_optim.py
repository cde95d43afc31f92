"""Direct oracles for the optimizer and the learning-rate schedules: a NumPy AdamW (masked
decay, global-norm clipping, bias correction) and each schedule's formula written out again.

Nothing here is compared to numbers copied from the code's own output.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from scaling.config import OptimConfig
from scaling.schedules import schedule
from scaling.train.optimizer import decay_mask, hidden_lr, make_optimizer, mup_scale_updates


# ---------------------------------------------------------------- schedule formulas (NumPy)
def cosine_lr(c, lr, warmup, total, ratio):
    """GPT-3 §B: linear warmup to lr over `warmup` steps, then cosine to ratio·lr at `total`."""
    if c < warmup:
        return lr * c / warmup
    progress = min((c - warmup) / (total - warmup), 1.0)
    end = ratio * lr
    return end + (lr - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def rsqrt_lr(c, peak, warmup):
    """Vaswani et al. §5.3 with peak lr(w) = peak and step s = count + 1."""
    s = c + 1
    return peak * min(math.sqrt(warmup / s), s / warmup)


def linear_decay_lr(c, lr, warmup, total, ratio):
    if c < warmup:
        return lr * c / warmup
    return lr + (ratio * lr - lr) * min((c - warmup) / (total - warmup), 1.0)


LR, TOTAL, WARMUP, RATIO = 3e-3, 1000, 200, 0.1
# warmup, its end, mid-decay (cosine there = the mean of lr and the floor), late, end, past it
POINTS = [0, 1, 50, 100, 199, 200, 201, 400, 600, 900, 999, 1000, 1500]


@pytest.mark.parametrize(
    "name,formula",
    [
        ("cosine", lambda c: cosine_lr(c, LR, WARMUP, TOTAL, RATIO)),
        ("linear_decay", lambda c: linear_decay_lr(c, LR, WARMUP, TOTAL, RATIO)),
        ("rsqrt", lambda c: rsqrt_lr(c, LR, WARMUP)),
    ],
)
def test_every_schedule_matches_its_formula(name, formula):
    optim = OptimConfig(lr=LR, schedule=name, warmup_steps=WARMUP, min_lr_ratio=RATIO)
    fn = schedule(optim, TOTAL)
    for c in POINTS:
        assert float(fn(c)) == pytest.approx(formula(c), rel=1e-5, abs=1e-12), (name, c)


def test_schedule_landmarks():
    """The named landmarks by hand: peak at the end of warmup, the midpoint of the cosine is
    the mean of peak and floor, the floor is min_lr_ratio · lr, rsqrt halves at 4·warmup."""
    cos = schedule(OptimConfig(lr=LR, warmup_steps=WARMUP, min_lr_ratio=RATIO), TOTAL)
    assert float(cos(WARMUP // 2)) == pytest.approx(LR / 2, rel=1e-5)
    assert float(cos(WARMUP)) == pytest.approx(LR, rel=1e-5)
    assert float(cos((WARMUP + TOTAL) // 2)) == pytest.approx(LR * (1 + RATIO) / 2, rel=1e-5)
    assert float(cos(TOTAL)) == pytest.approx(RATIO * LR, rel=1e-5)
    assert float(cos(10 * TOTAL)) == pytest.approx(RATIO * LR, rel=1e-5)
    rs = schedule(OptimConfig(lr=LR, schedule="rsqrt", warmup_steps=WARMUP), TOTAL)
    assert float(rs(4 * WARMUP - 1)) == pytest.approx(LR / 2, rel=1e-5)  # s = 4w
    lin = schedule(
        OptimConfig(lr=LR, schedule="linear_decay", warmup_steps=WARMUP, min_lr_ratio=0.0), TOTAL
    )
    assert float(lin((WARMUP + TOTAL) // 2)) == pytest.approx(LR / 2, rel=1e-5)
    assert float(lin(TOTAL)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", ["cosine", "linear_decay"])
def test_warmup_longer_than_the_run_is_clamped(name):
    """warmup_steps >= total_steps: warmup ends one step before the end (total - 1)."""
    optim = OptimConfig(lr=1.0, schedule=name, warmup_steps=50, min_lr_ratio=0.2)
    fn = schedule(optim, 10)
    assert float(fn(0)) == 0.0
    assert float(fn(3)) == pytest.approx(3 / 9, rel=1e-5)
    assert float(fn(9)) == pytest.approx(1.0, rel=1e-5)
    assert float(fn(10)) == pytest.approx(0.2, rel=1e-5)
    # a one-step run has no warmup at all: its only step runs at the peak
    assert float(schedule(optim, 1)(0)) == pytest.approx(1.0, rel=1e-6)


def test_rsqrt_with_zero_warmup_is_inverse_square_root():
    fn = schedule(OptimConfig(lr=2.0, schedule="rsqrt", warmup_steps=0), 100)
    for c in (0, 3, 15, 99):
        assert float(fn(c)) == pytest.approx(2.0 / math.sqrt(c + 1), rel=1e-5)


def test_zero_warmup_cosine_starts_at_the_peak():
    fn = schedule(OptimConfig(lr=1.0, warmup_steps=0, min_lr_ratio=0.0), 100)
    assert float(fn(0)) == pytest.approx(1.0, rel=1e-6)
    assert float(fn(50)) == pytest.approx(0.5, rel=1e-5)


# ---------------------------------------------------------------- AdamW (NumPy)
def numpy_adamw(params, grads_seq, optim, lrs, decayed):
    """Loshchilov & Hutter 2019 with Adam's bias correction (Kingma & Ba 2015, Alg. 1) after
    clipping the gradient's global norm to `clip_norm`; decay only where `decayed[name]`."""
    p = {k: v.astype(np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    for t, (g, lr) in enumerate(zip(grads_seq, lrs, strict=True), start=1):
        g = {k: x.astype(np.float64) for k, x in g.items()}
        norm = math.sqrt(sum(float(np.sum(x * x)) for x in g.values()))
        if optim.clip_norm > 0 and norm > optim.clip_norm:
            g = {k: x * optim.clip_norm / norm for k, x in g.items()}
        for k in p:
            m[k] = optim.b1 * m[k] + (1 - optim.b1) * g[k]
            v[k] = optim.b2 * v[k] + (1 - optim.b2) * g[k] ** 2
            m_hat = m[k] / (1 - optim.b1**t)
            v_hat = v[k] / (1 - optim.b2**t)
            step = m_hat / (np.sqrt(v_hat) + optim.eps)
            if decayed[k]:
                step = step + optim.weight_decay * p[k]
            p[k] = p[k] - lr * step
    return p


def _flat(tree):
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(x)
        for path, x in jax.tree_util.tree_leaves_with_path(tree)
    }


def _tree(seed):
    rng = np.random.default_rng(seed)
    return {
        "layer": {
            "dense": {"kernel": rng.normal(size=(4, 3)), "bias": rng.normal(size=3)},
            "norm": {"scale": 1.0 + rng.normal(size=4)},
        },
        "embed": {"embedding": rng.normal(size=(5, 4))},
    }


@pytest.mark.parametrize("clip_norm,grad_scale", [(1.0, 10.0), (1.0, 0.01), (0.0, 10.0)])
def test_adamw_steps_match_numpy(clip_norm, grad_scale):
    """Three steps through the warmup: clipping (active, inactive, off), masked decay (the
    kernel decays; bias, norm scale and embedding do not) and bias correction at t = 1..3."""
    optim = OptimConfig(
        lr=0.1, warmup_steps=2, weight_decay=0.5, b1=0.8, b2=0.9, eps=1e-6, clip_norm=clip_norm
    )
    total = 10
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), _tree(0))
    grads = [
        jax.tree.map(lambda x: jnp.asarray(x * grad_scale, jnp.float32), _tree(s))
        for s in (1, 2, 3)
    ]
    tx = make_optimizer(optim, total)
    state, p = tx.init(params), params
    for g in grads:
        updates, state = tx.update(g, state, p)
        p = jax.tree.map(lambda a, u: a + u, p, updates)
    flat = _flat(params)
    decayed = {k: k.endswith("kernel") for k in flat}
    lrs = [cosine_lr(c, 0.1, 2, total, optim.min_lr_ratio) for c in range(3)]
    want = numpy_adamw(flat, [_flat(g) for g in grads], optim, lrs, decayed)
    got = _flat(p)
    for k in flat:
        np.testing.assert_allclose(got[k], want[k], rtol=2e-5, atol=2e-6, err_msg=k)
    assert not np.allclose(got["layer/dense/kernel"], flat["layer/dense/kernel"])


def test_decay_mask_is_kernels_only():
    mask = _flat(decay_mask(_tree(0)))
    assert mask == {
        "layer/dense/kernel": True,
        "layer/dense/bias": False,
        "layer/norm/scale": False,
        "embed/embedding": False,
    }


def test_mup_scales_hidden_kernels_only():
    """μP (Yang et al. 2022 Table 3): hidden kernels' updates ÷ width_mult; lm_head, biases,
    norms and embeddings unchanged; width_mult 1 is the identity."""
    tree = _tree(0)
    tree["lm_head"] = {"kernel": np.ones((4, 5))}
    out = _flat(mup_scale_updates(tree, 4.0))
    flat = _flat(tree)
    for k, x in flat.items():
        factor = 0.25 if k == "layer/dense/kernel" else 1.0
        np.testing.assert_allclose(out[k], x * factor, err_msg=k)
    assert mup_scale_updates(tree, 1.0) is tree
    assert hidden_lr(6e-3, 4.0) == pytest.approx(1.5e-3)


def test_masks_handle_sequence_nodes():
    """A tree with a tuple of layers (path entries without `.key`): kernels still found."""
    tree = {
        "blocks": ({"kernel": np.ones((2, 2))}, {"bias": np.ones(2)}),
        "kernel": np.ones(3),
        "pair": (np.ones(2), np.ones(2)),  # leaves whose own path entry is an index
    }
    assert jax.tree.leaves(decay_mask(tree)) == [True, False, True, False, False]
    scaled = mup_scale_updates(tree, 2.0)
    np.testing.assert_allclose(scaled["blocks"][0]["kernel"], 0.5)
    np.testing.assert_allclose(scaled["blocks"][1]["bias"], 1.0)
