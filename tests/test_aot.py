"""Ahead-of-time compile (the path `scaling bench compile` takes for TPU topologies), here on
the 8 simulated CPU devices: per-device state memory matches a hand count."""

import jax
import pytest

from scaling.aot import compile_for
from scaling.config import Config, MeshConfig, ModelConfig, TrainConfig
from scaling.laws.accounting import param_counts


@pytest.mark.slow
def test_compiled_state_is_sharded_eight_ways():
    config = Config(
        model=ModelConfig(vocab_size=256, n_layers=2, d_model=64, n_heads=4, d_ff=256,
                          max_len=32, dtype="float32"),
        mesh=MeshConfig(1, 8, 1), train=TrainConfig(global_batch=8))
    compiled, mesh = compile_for(config, jax.devices())
    mem = compiled.memory_analysis()
    n = param_counts(config.model)["total"]
    # Replicated by the rules (tensor = 1 here): per layer two LayerNorms (2 x 2 x 64), the
    # q/k/v biases [N, H] (3 x 64) and the MLP bias [256]; plus the final LayerNorm (2 x 64).
    replicated = 2 * (2 * 2 * 64 + 3 * 64 + 256) + 2 * 64
    # AdamW state: parameters + first + second moments, float32; the rest split over fsdp = 8.
    state_bytes = 3 * 4 * (replicated + (n - replicated) / 8)
    batch_bytes = 5 * 4 * 8 * 32 / 8  # five [B, T] int32/float32 arrays, batch split 8 ways
    # what remains is a handful of scalars (step, skipped count, Adam count, the PRNG key)
    extra = mem.argument_size_in_bytes - (state_bytes + batch_bytes)
    assert 0 <= extra <= 64
    assert mesh.shape["fsdp"] == 8


@pytest.mark.slow
def test_tpu_train_step_calls_the_splash_kernel():
    """`auto` on a TPU topology: the compiled gpt-tiny step runs the splash kernel (Mosaic
    custom calls: its forward, dq and dkv kernels, once in the scanned layer body)."""
    pytest.importorskip("libtpu", reason="needs the test extra's jax[tpu] (libtpu)")
    from scaling.aot import compile_lowered, fused_attention_calls, lower_for, topology_devices
    from scaling.presets import get_preset

    devices = topology_devices("v5p:2x2x2")
    lowered, _, resolved = lower_for(get_preset("gpt-tiny"), devices)
    assert resolved.model.attention == "splash"
    assert fused_attention_calls(compile_lowered(lowered, resolved, devices).as_text()) == 3
