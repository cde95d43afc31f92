"""Test setup: 8 simulated CPU devices, set before JAX is imported anywhere, and a private
cache directory so tests never touch the user's ~/.cache/scaling."""

import os
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("SCALING_CACHE", tempfile.mkdtemp(prefix="scaling-test-cache-"))
# One persistent XLA compilation cache for the whole suite and its subprocesses: many tests
# compile the same small train step again.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(os.environ["SCALING_CACHE"],
                                                                "xla"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
