"""The target platform, resolved once when a run starts (docs/design.md, "Platform").

`model.dtype=auto` and `model.attention=auto` name a choice that depends on where the model
runs, which is not always where Python runs: an ahead-of-time compile for a TPU topology on
a CPU host must get bfloat16 and the TPU path. Every entry point (train, bench, AOT compile,
eval, generate) calls `resolve(config, devices)` with the devices the model will run on, so
no layer looks at `jax.default_backend()` while tracing.
"""

from __future__ import annotations

import dataclasses

from scaling.host_memory import tune_malloc

DTYPES = ("auto", "float32", "bfloat16", "float16")  # model.dtype


def platform_of(devices) -> str:
    """'cpu', 'gpu' or 'tpu' for a list of (possibly compile-only) devices."""
    platform = devices[0].platform.lower()
    return "gpu" if platform in ("gpu", "cuda", "rocm") else platform


def auto_dtype(platform: str) -> str:
    """Compute dtype for `auto`: bfloat16 on accelerators (params stay float32), float32 on
    CPU, where bfloat16 matmuls are emulated and slower."""
    return "float32" if platform == "cpu" else "bfloat16"


def auto_attention(platform: str) -> str:
    """Attention path for `auto`: cuDNN's fused kernel on GPU, the XLA path elsewhere."""
    return "cudnn" if platform == "gpu" else "xla"


# CPU unrolls scanned stacks up to this depth: measured faster there (no while loop, no
# stacked residual buffers), while compile time grows with the depth (README, "Performance").
CPU_UNROLL_MAX_LAYERS = 24


def auto_scan_unroll(platform: str, n_layers: int) -> int:
    """Layers per iteration of a scanned stack for `model.scan_unroll=0`: all of them on CPU
    for stacks up to CPU_UNROLL_MAX_LAYERS deep, else 1 (a loop: compile time independent of
    depth, which large models on GPU/TPU need)."""
    return n_layers if platform == "cpu" and n_layers <= CPU_UNROLL_MAX_LAYERS else 1


def resolve(config, devices):
    """`config` (a scaling.config.Config) with `auto` dtype and attention, and
    `scan_unroll=0`, replaced by the concrete choice for the platform of `devices`. On CPU
    devices this process's allocator is tuned too (scaling/host_memory.py)."""
    platform = platform_of(devices)
    if platform == "cpu":  # steps run here: keep their buffers in the heap (host_memory.py)
        tune_malloc()
    m = config.model
    model = dataclasses.replace(
        m,
        dtype=auto_dtype(platform) if m.dtype == "auto" else m.dtype,
        attention=auto_attention(platform) if m.attention == "auto" else m.attention,
        scan_unroll=m.scan_unroll or auto_scan_unroll(
            platform, max(m.n_layers, m.n_decoder_layers)),
    )
    return dataclasses.replace(config, model=model)
