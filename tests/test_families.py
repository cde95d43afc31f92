"""The family/objective registry: every preset family works through it end to end (params,
bench train, bench compile), the FLOP accounting bands exactly the layers the stack bands,
and `auto` settings are resolved against the target platform."""

import dataclasses
import pathlib
import re

import jax
import numpy as np
import pytest
from flax import linen as nn

from scaling import accounting
from scaling.cli import main
from scaling.config import ConfigError, ModelConfig
from scaling.families import (
    batch_fields,
    family_names,
    family_of,
    flops_per_token,
    get_family,
    objective_of,
)
from scaling.families.schema import check_batch, dummy_batch, synthetic_batch
from scaling.models.attention import Attention, MaskSpec, attention_mask
from scaling.models.gpt import GPT
from scaling.platform import resolve
from scaling.presets import get_preset, preset_names

TINY = ["gpt-tiny", "bert-tiny", "transformer-tiny"]
SMALL_STEP = ["--set", "train.global_batch=8", "--set", "train.seq_len=32"]


def test_every_preset_resolves_to_a_registered_family_and_objective():
    for name in preset_names():
        config = get_preset(name)
        family, objective = family_of(config.model), objective_of(config)
        assert family.name == config.model.family
        assert objective.name == family.objectives[0]
    assert set(family_names()) == {"gpt", "bert", "encdec"}


def test_unknown_family_and_mismatched_objective_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model family"):
        get_family("rnn")
    config = get_preset("bert-tiny")
    bad = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                objective="causal_lm"))
    with pytest.raises(ConfigError, match="does not apply to the bert family"):
        objective_of(bad)


@pytest.mark.parametrize("preset", TINY)
def test_schema_batches_pass_their_own_check_and_a_drifted_one_fails(preset):
    config = get_preset(preset)
    fields = batch_fields(config)
    batch = synthetic_batch(fields, 4, 16, config.model.vocab_size, np.random.default_rng(0))
    check_batch(fields, batch, 4, 16, "x")
    assert {k: v.shape for k, v in dummy_batch(fields, 4, 16).items()} == \
        {k: v.shape for k, v in batch.items()}
    drifted = dict(batch, extra=batch["inputs"])
    with pytest.raises(Exception, match="unexpected"):
        check_batch(fields, drifted, 4, 16, "x")
    short = {k: v[:, :8] if v.ndim == 2 else v for k, v in batch.items()}
    with pytest.raises(Exception, match="schema says"):
        check_batch(fields, short, 4, 16, "x")


@pytest.mark.slow
@pytest.mark.parametrize("preset", TINY)
def test_params_bench_train_and_bench_compile_run_for_every_family(preset, capsys):
    assert main(["params", "--config", preset, "--json"]) == 0
    assert main(["bench", "train", "--config", preset, "--steps", "3", "--warmup", "0",
                 *SMALL_STEP]) == 0
    assert main(["bench", "compile", "--config", preset, *SMALL_STEP]) == 0
    out = capsys.readouterr().out
    assert "tokens/s" in out and "per device: arguments" in out
    assert re.search(r"^compile [\d.]+ s", out, re.M)


# --------------------------------------------------------------------------------------------
# The band rule: what the accounting counts is what the stack's masks do.


def _layer_masks(model: ModelConfig, T: int) -> list[np.ndarray]:
    """The self-attention mask each layer of an unrolled GPT really applies, in layer order
    (intercepted at the one attention function every block calls)."""
    masks = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, Attention) and context.method_name == "__call__":
            mask = args[2]  # a MaskSpec (training/eval) and this layer's band width
            if isinstance(mask, MaskSpec):
                mask = attention_mask(mask, kwargs.get("band"))  # as the XLA path builds it
            masks.append(np.asarray(mask)[0, 0])  # [T, S]
        return next_fun(*args, **kwargs)

    ids = np.zeros((1, T), np.int32)
    gpt = GPT(model)
    params = gpt.init(jax.random.key(0), ids)
    with nn.intercept_methods(record):
        gpt.apply(params, ids)
    return masks


@pytest.mark.slow
@pytest.mark.parametrize("every", [1, 2, 3])
def test_accounting_bands_the_layers_the_stack_bands(every):
    T, r = 16, 3
    m = ModelConfig(vocab_size=64, n_layers=5, d_model=32, n_heads=4, d_ff=64, max_len=T,
                    local_window=r, local_every=every, scan_layers=False, dtype="float32")
    masks = _layer_masks(m, T)
    assert len(masks) == m.n_layers
    full_causal = np.tril(np.ones((T, T), bool))
    banded = [not np.array_equal(mk, full_causal) for mk in masks]
    expected = {1: [True] * 5, 2: [False, True, False, True, False],
                3: [False, True, False, False, True]}[every]
    assert banded == expected  # the stack: GPT-3 §2.1's alternation as configured
    # The accounting: dense causal layers count T/2 keys (halved convention); banded layers
    # the exact mean of the mask the stack applied.
    keys = sum(mk.sum() / T if b else T / 2 for mk, b in zip(masks, banded, strict=True))
    got = flops_per_token(m, T)["attention"] / (12 * m.d_model)
    assert got == pytest.approx(keys, rel=1e-12)


# --------------------------------------------------------------------------------------------
# The platform: `auto` resolved against the target's devices, not the host's.


@dataclasses.dataclass
class FakeDevice:
    platform: str


def test_auto_resolves_per_platform_and_explicit_settings_stay():
    c = get_preset("gpt-tiny")
    assert resolve(c, [FakeDevice("cpu")]).model.dtype == "float32"
    assert resolve(c, [FakeDevice("tpu")]).model.dtype == "bfloat16"
    gpu = resolve(dataclasses.replace(c, model=dataclasses.replace(c.model, attention="auto")),
                  [FakeDevice("cuda")])
    assert (gpu.model.dtype, gpu.model.attention) == ("bfloat16", "cudnn")
    fixed = dataclasses.replace(c, model=dataclasses.replace(c.model, dtype="float16"))
    assert resolve(fixed, [FakeDevice("tpu")]).model.dtype == "float16"


def test_aot_lowering_for_a_tpu_target_computes_in_bfloat16_on_this_cpu_host():
    pytest.importorskip("libtpu", reason="needs the test extra's jax[tpu] (libtpu)")
    from scaling.aot import lower_for, topology_devices

    config = get_preset("gpt-tiny")  # model.dtype=auto
    assert config.model.dtype == "auto"
    config = dataclasses.replace(config, train=dataclasses.replace(
        config.train, global_batch=8, seq_len=32))
    tpu_lowered, _, tpu_config = lower_for(config, topology_devices("v5p:2x2x2"))
    cpu_lowered, _, cpu_config = lower_for(config, jax.devices())
    assert jax.default_backend() == "cpu"
    assert tpu_config.model.dtype == "bfloat16" and cpu_config.model.dtype == "float32"
    # matmuls of the TPU lowering take bf16 operands; the CPU one has no bf16 at all
    assert re.search(r"dot_general.*bf16", tpu_lowered.as_text())
    assert "bf16" not in cpu_lowered.as_text()


# --------------------------------------------------------------------------------------------
# Nothing outside the registry branches on a family name.


def test_no_module_outside_the_registry_branches_on_a_family_name():
    root = pathlib.Path(__file__).resolve().parents[1] / "scaling"
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
                 if p.parent.name != "families"
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"family\s*(==|!=)", line)]
    assert offenders == []


def test_param_counts_of_the_accounting_equal_the_models_own():
    from scaling.params import count_params

    for preset in TINY:
        config = get_preset(preset)
        assert count_params(config)["total"] == accounting.param_counts(
            config.model, family_of(config.model).layout(config.model))["total"]
