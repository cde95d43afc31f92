"""Host allocator settings for the training process (glibc malloc, set through `mallopt`).

XLA's CPU runtime allocates the temporary buffers of every execution with malloc (one
block per device holding all of the step's temporaries: 54 MB per simulated device for
gpt-tiny on the (2, 2, 2) mesh) and frees them when it ends. glibc serves blocks above its
mmap threshold (at most 32 MB) with mmap and gives them back with munmap, and trims a heap
whose top is free, so every step faulted its whole working set in again, page by page,
zero-filled by the kernel: on the 2-core dev VM about a quarter of the gpt-tiny step's CPU
time was kernel page-fault and unmap work (`perf record`; `strace` showed a 54 MB
mmap/munmap pair per device per step). Serving every block from the heap and keeping freed
memory in the process removes that: 1.79x the tokens/s of the same code with glibc's
defaults (README, "Performance"). It is what a caching allocator (TCMalloc, which JAX/TF
guides recommend for CPU training) does, without a preloaded library.

The cost: the process keeps its peak heap instead of returning it between steps, the usual
trade of a caching allocator. Applied only when the model runs on CPU devices
(`platform.resolve`); `SCALING_MALLOC=system` keeps glibc's defaults, and a `MALLOC_*_`
environment variable the user set wins for its parameter.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

MIB = 1 << 20
# mallopt parameter numbers (glibc <malloc.h>), with the values set here
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
SETTINGS = (
    # never give a free heap top back to the kernel below this much
    (M_TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_", 2048 * MIB),
    # grow the heap in steps this large (fewer brk calls and fresh pages)
    (M_TOP_PAD, "MALLOC_TOP_PAD_", 256 * MIB),
    # no block from mmap: every size comes from the heap and is reused after free
    (M_MMAP_MAX, "MALLOC_MMAP_MAX_", 0),
)


def _libc():
    """glibc, or None elsewhere (macOS, musl: nothing to tune)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (glibc only; musl has no such symbol)
        return libc if hasattr(libc, "mallopt") else None
    except (OSError, AttributeError):
        return None


def tune_malloc(environ=os.environ) -> dict[str, int]:
    """Apply SETTINGS to this process's allocator (idempotent); returns what was set ({}
    when nothing: not glibc, or `SCALING_MALLOC=system`). Blocks allocated before keep
    their kind; the step's buffers, allocated at each execution, follow the new settings."""
    if environ.get("SCALING_MALLOC", "") == "system":
        return {}
    libc = _libc()
    if libc is None:
        return {}
    applied = {}
    for param, env_name, value in SETTINGS:
        if env_name in environ:  # the user's own choice, already read by glibc at startup
            continue
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1:
            applied[env_name] = value
    return applied
