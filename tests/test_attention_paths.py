"""Which attention path a run takes, and the one mask function the XLA and cuDNN paths share.

`attention_mask` is checked against a loop over (row, query, key) written from the rules
(segments, causality with queries aligned to the last keys, a band |t' - s| < r); the path
table against the rules of docs/performance.md ("Attention paths")."""

import dataclasses
import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from scaling.models.masks import MaskSpec, attention_mask
from scaling.platform import attention_line, attention_plan, resolve
from scaling.presets import get_preset


def _loop_mask(q_seg, k_seg, causal, band, with_causal=True):
    B, T = q_seg.shape
    S = k_seg.shape[1]
    out = np.zeros((B, 1, T, S), bool)
    for b, t, s in itertools.product(range(B), range(T), range(S)):
        t_key = t + S - T  # the key position query t sits at
        ok = q_seg[b, t] == k_seg[b, s]
        ok &= not (causal and with_causal) or s <= t_key
        ok &= not band or abs(t_key - s) < band
        out[b, 0, t, s] = ok
    return out


@pytest.mark.parametrize(
    "causal, band, T, S, with_causal",
    [
        (True, 0, 12, 12, True),
        (True, 3, 12, 12, True),
        (False, 4, 12, 12, True),
        (False, 0, 8, 12, True),
        (True, 3, 8, 12, True),
        (True, 3, 12, 12, False),
    ],
)
def test_attention_mask_matches_the_rules(causal, band, T, S, with_causal):
    rng = np.random.default_rng(0)
    q_seg = np.sort(rng.integers(0, 3, (2, T)), axis=1)  # packed documents, 0 = padding
    k_seg = np.sort(rng.integers(0, 3, (2, S)), axis=1)
    spec = MaskSpec(jnp.asarray(q_seg), jnp.asarray(k_seg), causal=causal)
    got = attention_mask(spec, jnp.int32(band) if band else None, with_causal=with_causal)
    np.testing.assert_array_equal(
        np.asarray(got), _loop_mask(q_seg, k_seg, causal, band, with_causal)
    )


def _config(**model):
    c = get_preset("gpt-tiny")
    return dataclasses.replace(c, model=dataclasses.replace(c.model, **model))


def test_auto_is_xla_on_cpu_and_keeps_every_setting():
    c = _config(attention="auto", attn_dropout=0.1)
    assert attention_plan(c, "cpu") == ("xla", 0.1, [])
    assert (
        resolve(c, [_Device("cpu")]).model.attention,
        resolve(c, [_Device("cpu")]).model.attn_dropout,
    ) == ("xla", 0.1)


def test_auto_takes_the_fused_kernel_without_attention_dropout_and_says_so():
    c = _config(attention="auto", attn_dropout=0.1, dropout=0.1)
    for platform, path, why in (("gpu", "cudnn", "fixed integer"), ("tpu", "splash", "no dropout")):
        got, rate, notes = attention_plan(c, platform)
        assert (got, rate, len(notes)) == (path, 0.0, 1)
        assert "model.attn_dropout 0.1 -> 0" in notes[0] and why in notes[0]
        assert "residual and embedding dropout 0.1 kept" in notes[0]
        resolved = resolve(c, [_Device(platform)])
        assert (resolved.model.attn_dropout, resolved.model.dropout) == (0.0, 0.1)


@pytest.mark.parametrize(
    "setting, platform, changes, needle",
    [
        ("cudnn", "gpu", dict(attn_dropout=0.1), "model.attn_dropout 0.1 > 0"),
        ("cudnn", "cpu", {}, "cuDNN needs a GPU"),
        ("splash", "gpu", {}, "the splash kernel is for TPU"),
        ("auto", "tpu", dict(max_len=100), "sequence length 100 is not a multiple of 128"),
    ],
)
def test_a_fused_kernel_that_cannot_run_gives_way_to_xla_with_one_reason(
    setting, platform, changes, needle
):
    c = _config(**{"attention": setting, "attn_dropout": 0.0, **changes})
    path, rate, notes = attention_plan(c, platform)
    assert path == "xla" and rate == c.model.attn_dropout
    assert len(notes) == 1 and needle in notes[0]
    assert needle in attention_line(c, [_Device(platform)])


def test_splash_inside_a_pipeline_gives_way_to_xla():
    c = _config(attention="splash", attn_dropout=0.0)
    c = dataclasses.replace(c, mesh=dataclasses.replace(c.mesh, stage=2))
    path, _, notes = attention_plan(c, "tpu")
    assert path == "xla" and "mesh.stage > 1" in notes[0]


def test_splash_on_cpu_runs_in_interpret_mode():
    path, _, notes = attention_plan(_config(attention="splash", attn_dropout=0.0), "cpu")
    assert path == "splash-interpret" and "interpret mode" in notes[0]


@dataclasses.dataclass
class _Device:
    platform: str
