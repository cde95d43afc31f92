"""The host allocator settings (scaling/host_memory.py): on CPU, a step's large temporary
block comes from the heap and is reused, instead of an mmap/munmap pair per execution."""

import os
import subprocess
import sys
import textwrap

import pytest

from scaling.host_memory import _libc, tune_malloc

needs_glibc = pytest.mark.skipif(_libc() is None or not hasattr(_libc(), "mallinfo2"),
                                 reason="glibc >= 2.33 only (mallopt, mallinfo2)")

# In a fresh process: how many bytes a 64 MB malloc gets from mmap (glibc's mallinfo2
# hblkhd), before and after `platform.resolve` for CPU devices.
PROBE = textwrap.dedent("""
    import ctypes, jax
    from scaling.config import Config
    from scaling.platform import resolve

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks",
                    "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2

    def mmapped_bytes_of_a_64mb_block():
        already = libc.mallinfo2().hblkhd
        block = libc.malloc(64 << 20)
        mapped = libc.mallinfo2().hblkhd - already
        libc.free(block)
        return mapped

    before = mmapped_bytes_of_a_64mb_block()
    resolve(Config(), jax.devices("cpu"))
    print(before, mmapped_bytes_of_a_64mb_block())
""")


def _probe(**env) -> tuple[int, int]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "SCALING_M"))}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**environ, **env}, text=True,
                         capture_output=True, check=True)
    before, after = map(int, out.stdout.split()[-2:])
    return before, after


@needs_glibc
def test_on_cpu_a_large_block_comes_from_the_heap():
    before, after = _probe()
    assert before >= 64 << 20  # glibc's default: a block this large is mmap'd
    assert after == 0  # tuned: served from (and freed back to) the heap


@needs_glibc
def test_scaling_malloc_system_keeps_glibc_defaults():
    before, after = _probe(SCALING_MALLOC="system")
    assert before >= 64 << 20 and after >= 64 << 20
    assert tune_malloc({"SCALING_MALLOC": "system"}) == {}


@needs_glibc
def test_a_malloc_variable_the_user_set_wins():
    applied = tune_malloc({"MALLOC_TOP_PAD_": "0"})
    assert "MALLOC_TOP_PAD_" not in applied
    assert applied == {"MALLOC_TRIM_THRESHOLD_": 2048 << 20, "MALLOC_MMAP_MAX_": 0}
