"""Decoding the encoder-decoder: the incremental decoder equals full recomputation, beam
search against exhaustive search and a hand-computed length-penalty case, beam 1 = greedy,
batched = one at a time, 8 devices = 1 device; label smoothing and the rsqrt schedule
against their formulas."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from scaling import sharding
from scaling.config import Config, MeshConfig, ModelConfig, OptimConfig, TrainConfig
from scaling.data.tokenizers import ByteTokenizer
from scaling.eval.translate import Translator
from scaling.models.encdec import EncDec
from scaling.models.losses import smoothed_token_losses
from scaling.models.search import beam_search, greedy, length_penalty
from scaling.schedules import schedule
from scaling.train.optimizer import make_optimizer
from scaling.train.state import init_state

MODEL = ModelConfig(family="encdec", vocab_size=263, n_layers=2, n_decoder_layers=2,
                    d_model=32, n_heads=4, d_ff=64, max_len=24, pos_emb="sinusoidal",
                    norm="post", activation="relu", dropout=0.0, attn_dropout=0.0,
                    dtype="float32", init_std=0.2)  # large weights: peaked, decisive logits


def _params(model=MODEL, seed=0):
    B, S = 1, 4
    ids = jnp.ones((B, S), jnp.int32)
    return nn.unbox(EncDec(model).init(jax.random.key(seed), ids, ids, ids, ids, ids,
                                       ids))["params"]


@pytest.mark.slow
def test_incremental_decoding_equals_full_recomputation_at_every_step():
    rng = np.random.default_rng(0)
    B, S, T = 3, 7, 6
    src = rng.integers(7, 263, (B, S)).astype(np.int32)
    seg = np.ones((B, S), np.int32)
    seg[1, 4:], seg[2, 2:] = 0, 0  # sources of different lengths, padded
    src = src * seg
    pos = np.arange(S)[None].repeat(B, 0).astype(np.int32) * seg
    dec = rng.integers(7, 263, (B, T)).astype(np.int32)
    tpos = np.arange(T)[None].repeat(B, 0).astype(np.int32)
    params = _params()
    full = EncDec(MODEL).apply({"params": params}, src, pos, seg, dec, tpos,
                               np.ones((B, T), np.int32))[..., :263]  # [B, T, V]
    model = EncDec(MODEL, decode=True)
    logits, state = model.apply({"params": params}, src, pos, seg, dec[:, :1],
                                mutable=["cache"])
    steps = [logits]
    for t in range(1, T):  # later steps see no source: cross-attention K/V come from the cache
        logits, state = model.apply({"params": params, "cache": state["cache"]}, None, None,
                                    None, dec[:, t:t + 1], mutable=["cache"])
        steps.append(logits)
    got = np.concatenate([np.asarray(s)[..., :263] for s in steps], axis=1)
    np.testing.assert_allclose(got, np.asarray(full), rtol=1e-4, atol=1e-4)
    assert "cross_key" in state["cache"]["decoder"]["layers"]["cross_attn"]


# --------------------------------------------------------------------------------------------
# Search on toy step functions with known scores.

EOS = 1


def table_step(table):
    """A bigram 'model': log p(next | previous token) from a table [V, V]; no state."""
    table = jnp.asarray(table, jnp.float32)
    return (lambda tokens, state: (table[tokens], state)), (lambda state, rows: state)


def exhaustive(table, limit, alpha, bos=0):
    """The best (score, tokens) over every sequence that ends in EOS or at the limit."""
    best = None
    V = len(table)
    for n in range(1, limit + 1):
        for seq in itertools.product(range(V), repeat=n):
            if EOS in seq[:-1] or (seq[-1] != EOS and n < limit):
                continue
            logp, prev = 0.0, bos
            for s in seq:
                logp, prev = logp + float(table[prev][s]), s
            score = logp / float(length_penalty(n, alpha))
            if best is None or score > best[0]:
                best = (score, list(seq))
    return best


def test_beam_search_prefers_what_the_length_penalty_says_hand_computed():
    # from the start: eos 0.5, "a" (2) 0.5; after "a": eos 0.9, "a" 0.1; token 0 never.
    p = np.full((3, 3), 1e-9)
    p[0, EOS], p[0, 2], p[2, EOS], p[2, 2] = 0.5, 0.5, 0.9, 0.1
    table = np.log(p)
    step, reorder = table_step(table)

    def best(alpha):
        toks, score = beam_search(step, reorder, None, batch=1, beam=3, max_len=4,
                                  limits=jnp.array([4]), bos=0, eos=EOS, alpha=alpha)
        return np.asarray(toks)[0].tolist(), float(score[0])

    # alpha 0: "eos" (log 0.5 = -0.693) beats "a eos" (log 0.45 = -0.799)
    assert best(0.0) == ([EOS, 0, 0, 0], pytest.approx(np.log(0.5), abs=1e-6))
    # alpha 2: lp(1) = 1, lp(2) = (7/6)^2: "a eos" scores -0.799 / 1.361 = -0.587 > -0.693
    toks, score = best(2.0)
    assert toks == [2, EOS, 0, 0]
    assert score == pytest.approx(np.log(0.45) / (7 / 6) ** 2, abs=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5])
def test_beam_search_with_a_wide_beam_finds_the_exhaustive_best(alpha):
    rng = np.random.default_rng(1)
    table = np.log(rng.dirichlet(np.full(4, 0.5), size=4))
    step, reorder = table_step(table)
    toks, score = beam_search(step, reorder, None, batch=1, beam=27, max_len=4,
                              limits=jnp.array([4]), bos=0, eos=EOS, alpha=alpha)
    want_score, want = exhaustive(table, 4, alpha)
    assert float(score[0]) == pytest.approx(want_score, abs=1e-5)
    assert np.asarray(toks)[0][:len(want)].tolist() == want


def test_beam_one_without_length_penalty_is_greedy():
    rng = np.random.default_rng(2)
    table = np.log(rng.dirichlet(np.full(6, 0.3), size=6))
    step, reorder = table_step(table)
    limits = jnp.array([3, 5, 8, 8])
    g = greedy(step, None, batch=4, max_len=8, limits=limits, bos=0, eos=EOS)
    b, _ = beam_search(step, reorder, None, batch=4, beam=1, max_len=8, limits=limits, bos=0,
                       eos=EOS, alpha=0.0)
    np.testing.assert_array_equal(np.asarray(b), np.asarray(g))


# --------------------------------------------------------------------------------------------
# The real decoder, batched and sharded.

SOURCES = ["hi", "a longer source sentence", "", "x", "mid length one"]


def translator(mesh_cfg, devices):
    config = Config(model=MODEL, mesh=mesh_cfg,
                    optim=OptimConfig(), train=TrainConfig(global_batch=8, seq_len=24))
    mesh = sharding.make_mesh(mesh_cfg, devices, config=config)
    tx = make_optimizer(config.optim, 10)
    state, shardings = init_state(config, tx, mesh, jax.random.key(3))
    return Translator(config, mesh, ByteTokenizer(), shardings.params), state.params


@pytest.fixture(scope="module")
def one_device():
    return translator(MeshConfig(1, 1, 1), jax.devices()[:1])


@pytest.mark.slow
@pytest.mark.parametrize("beam", [1, 3])
def test_batched_decoding_equals_one_source_at_a_time(one_device, beam):
    tr, params = one_device
    sources = tr.encode(SOURCES)
    together = tr.translate(params, sources, beam=beam, max_extra=6, batch=8)
    alone = [tr.translate(params, [s], beam=beam, max_extra=6, batch=8)[0] for s in sources]
    assert together == alone
    assert len(set(together)) > 1  # the sources give different outputs


@pytest.mark.slow
def test_decoding_on_eight_devices_equals_one(one_device):
    tr1, params1 = one_device
    tr8, params8 = translator(MeshConfig(2, 2, 2), jax.devices())
    assert params8["decoder"]["layers"]["mlp"]["wi"]["kernel"].sharding.num_devices == 8
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(params1),
                 jax.device_get(params8))  # the same seed gives the same parameters
    sources = tr1.encode(SOURCES)
    for beam in (1, 4):
        assert tr8.translate(params8, sources, beam=beam, max_extra=6) == \
            tr1.translate(params1, sources, beam=beam, max_extra=6)


# --------------------------------------------------------------------------------------------
# The training recipe.


def test_label_smoothing_matches_numpy():
    rng = np.random.default_rng(4)
    V, padded, eps = 5, 8, 0.1
    logits = rng.normal(size=(2, 3, padded)).astype(np.float32)
    logits[..., V:] = -1e30  # padded vocabulary rows
    targets = rng.integers(0, V, (2, 3))
    weights = np.array([[1, 1, 0], [1, 0, 1]], np.float32)
    total, nll, w = smoothed_token_losses(jnp.asarray(logits), jnp.asarray(targets),
                                          jnp.asarray(weights), eps, V)
    x = logits[..., :V].astype(np.float64)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    q = np.full((2, 3, V), eps / V)
    np.put_along_axis(q, targets[..., None], 1 - eps + eps / V, axis=-1)
    want = (-(q * logp).sum(-1) * weights).sum()
    want_nll = (-np.take_along_axis(logp, targets[..., None], -1)[..., 0] * weights).sum()
    assert float(total) == pytest.approx(want, rel=1e-5)
    assert float(nll) == pytest.approx(want_nll, rel=1e-5) and float(w) == 4


def test_rsqrt_schedule_is_the_papers_formula():
    d, w = 512, 4000
    fn = schedule(OptimConfig(lr=(d * w) ** -0.5, warmup_steps=w, schedule="rsqrt"), 100_000)
    for s in (1, 10, 1000, 3999, 4000, 4001, 20_000, 100_000):
        want = d ** -0.5 * min(s ** -0.5, s * w ** -1.5)  # Vaswani et al. 2017, eq. (3)
        assert float(fn(s - 1)) == pytest.approx(want, rel=1e-5)  # optax counts from 0


def test_transformer_presets_use_the_papers_recipe():
    from scaling.presets import get_preset

    for name in ("transformer-base", "transformer-big", "transformer-tiny"):
        o = get_preset(name).optim
        assert (o.schedule, o.label_smoothing, o.b2) == ("rsqrt", 0.1, 0.98)
    base = get_preset("transformer-base")
    assert base.optim.lr == pytest.approx((512 * 4000) ** -0.5)
    assert dataclasses.replace(base.optim).warmup_steps == 4000
