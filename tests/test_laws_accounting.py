"""Accounting against hand counts: published parameter totals, tensor-by-tensor lists, masks."""

import dataclasses
import math

import numpy as np
import pytest

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.laws import accounting as acc
from scaling.presets import get_preset


def unpadded(preset):
    """The preset as released: embedding rows exactly the vocabulary (no padding to 128)."""
    return dataclasses.replace(get_preset(preset).model, vocab_multiple=1)


def _sum_shapes(shapes):
    return sum(math.prod(s) for s in shapes)


def _toy_layer_shapes(d, n, h, f):
    """One self-attention block, written out tensor by tensor."""
    return [
        (d,),
        (d,),  # LayerNorm 1
        (d, n, h),
        (n, h),
        (d, n, h),
        (n, h),
        (d, n, h),
        (n, h),  # q, k, v
        (n, h, d),
        (d,),  # out
        (d,),
        (d,),  # LayerNorm 2
        (d, f),
        (f,),
        (f, d),
        (d,),  # MLP
    ]


@pytest.mark.parametrize(
    "preset, released",
    [
        ("gpt2-small", 124_439_808),  # Hugging Face GPT2Model counts
        ("gpt2-medium", 354_823_168),
        ("gpt2-large", 774_030_080),
        ("gpt2-xl", 1_557_611_200),
        ("bert-base", 110_106_428),  # Hugging Face BertForPreTraining (MLM + NSP heads)
    ],
)
def test_released_totals(preset, released):
    assert acc.param_counts(unpadded(preset))["total"] == released


def test_gpt2_small_embedding_split():
    counts = acc.param_counts(unpadded("gpt2-small"))
    assert counts["embedding"] == 50257 * 768 + 1024 * 768
    assert counts["non_embedding"] == 124_439_808 - 50257 * 768 - 1024 * 768


def test_gpt3_175b_kaplan_numbers():
    m = get_preset("gpt3-175b").model
    non_emb = acc.param_counts(m)["non_embedding"]
    assert non_emb == pytest.approx(174.0e9, rel=1e-3)
    # Kaplan's approximation N ~ 12 L d^2 for d_ff = 4d.
    assert non_emb == pytest.approx(12 * 96 * 12288**2, rel=1e-3)
    dense = acc.flops_per_token(m, 2048)["dense"]
    assert dense == pytest.approx(1.04e12, rel=0.01)


def test_two_layer_toy_by_hand():
    v, d, n, h, f, t = 11, 6, 2, 3, 10, 7
    layers = 2 * _toy_layer_shapes(d, n, h, f)
    base = dict(vocab_size=v, n_layers=2, d_model=d, n_heads=n, d_ff=f, max_len=t)
    pre = acc.param_counts(ModelConfig(vocab_multiple=1, **base, norm="pre"))
    assert pre["embedding"] == v * d + t * d
    assert pre["total"] == v * d + t * d + _sum_shapes(layers) + 2 * d  # final LayerNorm
    post_untied = acc.param_counts(
        ModelConfig(vocab_multiple=1, **base, norm="post", tie_embeddings=False)
    )
    assert post_untied["total"] == v * d + t * d + _sum_shapes(layers) + d * v
    sinus = acc.param_counts(ModelConfig(vocab_multiple=1, **base, pos_emb="sinusoidal"))
    assert sinus["embedding"] == v * d


def test_bert_toy_by_hand():
    v, d, n, h, f, t = 13, 4, 2, 2, 8, 5
    m = ModelConfig(
        vocab_multiple=1,
        family="bert",
        vocab_size=v,
        n_layers=1,
        d_model=d,
        n_heads=n,
        d_ff=f,
        max_len=t,
        norm="post",
        type_vocab_size=3,
    )
    heads = [(d,), (d,), (d, d), (d,), (d, d), (d,), (d,), (d,), (v,), (d, 2), (2,)]
    counts = acc.param_counts(m)
    assert counts["embedding"] == v * d + t * d + 3 * d
    assert counts["total"] == counts["embedding"] + _sum_shapes(
        _toy_layer_shapes(d, n, h, f) + heads
    )


def test_encdec_toy_by_hand():
    v, d, n, h, f = 9, 4, 2, 2, 6
    m = ModelConfig(
        vocab_multiple=1,
        family="encdec",
        vocab_size=v,
        n_layers=2,
        n_decoder_layers=1,
        d_model=d,
        n_heads=n,
        d_ff=f,
        pos_emb="sinusoidal",
        norm="pre",
    )
    enc = _toy_layer_shapes(d, n, h, f)
    cross = [(d,), (d,), (d, n, h), (n, h), (d, n, h), (n, h), (d, n, h), (n, h), (n, h, d), (d,)]
    counts = acc.param_counts(m)
    assert counts["embedding"] == v * d
    finals = 2 * 2 * d
    assert counts["total"] == v * d + _sum_shapes(2 * enc + enc + cross) + finals
    base = get_preset("transformer-base").model  # Vaswani Table 3: 65M
    assert acc.param_counts(base)["total"] == pytest.approx(65e6, rel=0.03)


def _mask_mean_keys(t, causal, window):
    i, j = np.arange(t)[:, None], np.arange(t)[None, :]
    mask = np.ones((t, t), bool)
    if causal:
        mask &= j <= i
    if window:
        mask &= np.abs(i - j) < window
    return mask.sum(1).mean()


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("t, window", [(16, 4), (16, 1), (9, 20), (64, 7)])
def test_band_keys_match_mask(t, window, causal):
    got = acc.mean_keys_per_query(t, causal, window)
    assert got == pytest.approx(_mask_mean_keys(t, causal, window))


def test_attention_flops_halved_causal_and_banded_layers():
    d, t, r = 8, 32, 4
    m = ModelConfig(
        vocab_multiple=1,
        vocab_size=5,
        n_layers=4,
        d_model=d,
        n_heads=2,
        d_ff=16,
        max_len=t,
        local_window=r,
        local_every=2,
    )
    got = acc.flops_per_token(m, t)
    keys = 2 * (t / 2) + 2 * _mask_mean_keys(t, True, r)  # layers 1 and 3 banded
    assert got["attention"] == pytest.approx(12 * d * keys)
    kernels = 4 * (4 * d * d + 2 * d * 16)
    assert got["dense"] == 6 * (kernels + 5 * d)
    assert got["total"] == got["dense"] + got["attention"]


def test_encdec_and_bert_attention_terms():
    d, t = 8, 10
    enc = ModelConfig(
        vocab_multiple=1,
        family="encdec",
        vocab_size=5,
        n_layers=2,
        n_decoder_layers=3,
        d_model=d,
        n_heads=2,
        d_ff=16,
        pos_emb="sinusoidal",
    )
    # encoder 2 x T, decoder self 3 x T/2, cross 3 x T
    assert acc.flops_per_token(enc, t)["attention"] == pytest.approx(
        12 * d * (2 * t + 1.5 * t + 3 * t)
    )
    bert = ModelConfig(
        vocab_multiple=1, family="bert", vocab_size=5, n_layers=2, d_model=d, n_heads=2, d_ff=16
    )
    assert acc.flops_per_token(bert, t)["attention"] == pytest.approx(12 * d * 2 * t)


def test_kaplan_forward_flops():
    m = get_preset("gpt2-small").model
    n = 124_439_808 - 50257 * 768 - 1024 * 768
    assert acc.kaplan_flops_per_token(m, 1024) == 2 * n + 2 * 12 * 1024 * 768


def test_conversions():
    assert acc.training_flops(70e9, 1.4e12) == pytest.approx(5.88e23)  # Chinchilla 70B
    assert acc.tokens_for_compute(5.88e23, 70e9) == pytest.approx(1.4e12)
    assert acc.tokens_per_step(512, 1024) == 524_288
    assert acc.steps_for_tokens(524_289, 512, 1024) == 2
    assert acc.tokens_for_steps(3, 2, 5) == 30
    assert acc.epochs(3e9, 1e9) == pytest.approx(3.0)
    with pytest.raises(UserError, match="global_batch=0"):
        acc.tokens_per_step(0, 1024)


def test_no_window_is_dense_attention():
    """Without a band (the default): T/2 keys causal (the halved convention), T bidirectional."""
    assert acc.mean_keys_per_query(16, True) == 8.0
    assert acc.mean_keys_per_query(16, False) == 16.0
