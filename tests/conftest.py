"""Test setup: 8 simulated CPU devices, set before JAX is imported anywhere, and a private
cache directory so tests never touch the user's ~/.cache/scaling."""

import os
import tempfile

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("SCALING_CACHE", tempfile.mkdtemp(prefix="scaling-test-cache-"))
