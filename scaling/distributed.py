"""Multi-process start-up: `jax.distributed.initialize` from the environment.

Set SCALING_COORDINATOR=host:port, SCALING_NUM_PROCESSES and SCALING_PROCESS_ID (launch/
scripts do), or SCALING_DISTRIBUTED=auto on TPU pods and SLURM, where JAX finds them itself.
Nothing set means a single process.
"""

from __future__ import annotations

import os

from scaling.errors import UserError


def initialize_from_env() -> bool:
    """Initialize jax.distributed when the environment asks for it; True if it did."""
    import jax

    if os.environ.get("SCALING_DISTRIBUTED") == "auto":
        jax.distributed.initialize()
        return True
    coordinator = os.environ.get("SCALING_COORDINATOR")
    if not coordinator:
        return False
    try:
        n = int(os.environ["SCALING_NUM_PROCESSES"])
        pid = int(os.environ["SCALING_PROCESS_ID"])
    except (KeyError, ValueError):
        raise UserError("SCALING_COORDINATOR is set: also set SCALING_NUM_PROCESSES and "
                        "SCALING_PROCESS_ID to integers") from None
    timeout = int(os.environ.get("SCALING_INIT_TIMEOUT", "300"))
    # A process that dies is noticed after this many seconds without heartbeats; the others
    # then abort instead of waiting in a collective forever.
    heartbeat = int(os.environ.get("SCALING_HEARTBEAT_TIMEOUT", "100"))
    jax.distributed.initialize(coordinator, num_processes=n, process_id=pid,
                               initialization_timeout=timeout,
                               heartbeat_timeout_seconds=heartbeat)
    return True
