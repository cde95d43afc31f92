"""Compile-only NVIDIA GPUs: `scaling bench compile --topology h100:1x1x8` on a machine with
no GPU ("deviceless" ahead-of-time compilation, next to the TPU topologies of aot.py).

XLA describes a GPU it compiles for by a target description (a GpuTargetConfigProto in text
form); scaling/gpu_targets/ ships the ones named in TARGETS, from XLA's
xla/backends/gpu/target_config/specs/ (Apache-2.0; provenance in each file's header and in
that folder's README). The CUDA plugin comes with `pip install "scaling[gpu]"`; this host's
backend must stay CPU (the plugin cannot start without a driver), which `use_cpu_host` sets
before JAX initializes, so the command needs no environment variable from the user.
"""

from __future__ import annotations

import os
import re
from importlib import resources

from scaling.errors import UserError

# --topology prefix -> the target description shipped in scaling/gpu_targets/
TARGETS = {
    "h100": "h100_sxm.txtpb",
    "h200": "h200.txtpb",
    "a100": "a100_sxm_80.txtpb",
    "b200": "b200.txtpb",
}
SHAPE = re.compile(r"^(\d+)x(\d+)x(\d+)$")  # SLICESxHOSTSxDEVICES: h100:1x4x8 = 4 nodes of 8


def is_gpu_topology(topology: str | None) -> bool:
    """Whether `topology` names a GPU (h100:1x1x8) rather than a TPU slice (v5p:2x2x2)."""
    return bool(topology) and topology.split(":", 1)[0].lower() in TARGETS


def use_cpu_host() -> None:
    """Keep this process's own backend on CPU: call before JAX initializes its backends."""
    os.environ["JAX_PLATFORMS"] = "cpu"
    import sys

    if "jax" in sys.modules:  # imported, maybe not yet initialized: the config still counts
        sys.modules["jax"].config.update("jax_platforms", "cpu")


def target_text(kind: str) -> str:
    """The shipped target description of GPU `kind` (a TARGETS key)."""
    return resources.files("scaling.gpu_targets").joinpath(TARGETS[kind]).read_text()


def memory_bytes(kind: str) -> int:
    """The GPU's memory (device_memory_size of its target description)."""
    return int(re.search(r"device_memory_size:\s*(\d+)", target_text(kind)).group(1))


def parse(topology: str) -> tuple[str, str]:
    """'h100:1x4x8' -> ('h100', '1x4x8'); a malformed name is a usage error."""
    kind, _, shape = topology.partition(":")
    kind = kind.lower()
    if kind not in TARGETS or not SHAPE.match(shape):
        raise UserError(
            f"--topology {topology!r}: expected GPU:SLICESxHOSTSxDEVICES with GPU "
            f"one of {', '.join(TARGETS)}, e.g. h100:1x1x8 (one 8-GPU node) or "
            f"h100:1x4x8 (four)"
        )
    return kind, shape


def gpu_devices(topology: str):
    """Compile-only devices of `topology` (needs the CUDA plugin: `scaling[gpu]`)."""
    kind, shape = parse(topology)
    from jax.experimental import topologies

    try:
        desc = topologies.get_topology_desc(
            platform="cuda", topology=shape, target_config=target_text(kind)
        )
    except Exception as e:  # the CUDA plugin missing, or a target it cannot parse
        raise UserError(
            f"cannot describe GPU topology {topology!r} ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160]}); install the CUDA plugin: pip "
            f"install 'scaling[gpu]' (jax[cuda12] of the installed jax version)"
        ) from None
    return desc.devices
