"""The target platform, resolved once when a run starts (docs/design.md, "Platform").

`model.dtype=auto` and `model.attention=auto` name a choice that depends on where the model
runs, which is not always where Python runs: an ahead-of-time compile for a TPU topology on
a CPU host must get bfloat16 and the TPU path. Every entry point (train, bench, AOT compile,
eval, generate) calls `resolve(config, devices)` with the devices the model will run on, so
no layer looks at `jax.default_backend()` while tracing.
"""

from __future__ import annotations

import dataclasses

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


def resolve(config, devices):
    """`config` (a scaling.config.Config) with `auto` dtype and attention replaced by the
    concrete choice for the platform of `devices`."""
    platform = platform_of(devices)
    m = config.model
    model = dataclasses.replace(
        m,
        dtype=auto_dtype(platform) if m.dtype == "auto" else m.dtype,
        attention=auto_attention(platform) if m.attention == "auto" else m.attention,
    )
    return dataclasses.replace(config, model=model)
