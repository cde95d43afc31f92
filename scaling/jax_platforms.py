"""Which JAX platforms a command initializes: only those whose hardware is on this host.

With the TPU plugin (libtpu) installed and no TPU attached, JAX still initializes it when
`JAX_PLATFORMS` is unset, and libtpu prints three to five lines of errors about missing
topology variables before JAX falls back to the CPU; that breaks the one-line error
contract (docs/reliability.md). `choose()` runs before JAX is imported and, when the user has
not chosen (`JAX_PLATFORMS` unset, no `JAX_FORCE_TPU_INIT`), names the platforms whose
hardware is visible: the TPU only where a Google TPU sits on the PCI bus (the check JAX's own
`hardware_utils` makes), CUDA only where an NVIDIA device node exists and a CUDA plugin is
installed, ROCm likewise, and always the CPU. Compile-only TPU topologies
(`bench compile --topology`) load libtpu themselves and are not affected.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pkgutil

GOOGLE_PCI_VENDOR = "0x1ae0"
NVIDIA_DEVICES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg")  # dxg: WSL2
ROCM_DEVICE = "/dev/kfd"


def tpu_chips_visible() -> bool:
    """A Google accelerator on this host's PCI bus (JAX's test for a Cloud TPU VM)."""
    for vendor_path in glob.glob("/sys/bus/pci/devices/*/vendor"):
        try:
            with open(vendor_path) as f:
                if f.read().strip() == GOOGLE_PCI_VENDOR:
                    return True
        except OSError:
            continue
    return False


def _plugin_names() -> list[str]:
    """Modules installed under JAX's `jax_plugins` namespace (e.g. xla_cuda12), found
    without importing them."""
    spec = importlib.util.find_spec("jax_plugins")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [m.name for m in pkgutil.iter_modules(list(spec.submodule_search_locations))]


def visible_platforms() -> list[str]:
    """The JAX platforms worth initializing here, best first; 'cpu' always last."""
    plugins = " ".join(_plugin_names())
    platforms = []
    if importlib.util.find_spec("libtpu") is not None and tpu_chips_visible():
        platforms.append("tpu")
    if "cuda" in plugins and any(os.path.exists(d) for d in NVIDIA_DEVICES):
        platforms.append("cuda")
    if "rocm" in plugins and os.path.exists(ROCM_DEVICE):
        platforms.append("rocm")
    return platforms + ["cpu"]


def choose(environ=os.environ) -> None:
    """Set JAX_PLATFORMS to the visible platforms unless the user chose already; a no-op
    when no TPU plugin is installed (JAX then initializes nothing that prints)."""
    if "JAX_PLATFORMS" in environ or "JAX_FORCE_TPU_INIT" in environ:
        return
    if importlib.util.find_spec("libtpu") is None:
        return
    environ["JAX_PLATFORMS"] = ",".join(visible_platforms())
