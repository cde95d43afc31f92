"""Run `scaling` as N cooperating processes on this machine (jax.distributed on localhost).

    python launch/local_multiprocess.py --processes 2 --devices 4 -- \
        train --config gpt-tiny --workdir runs/mp

Each process gets SCALING_COORDINATOR / SCALING_NUM_PROCESSES / SCALING_PROCESS_ID (read by
scaling/distributed.py) and, on CPU, `devices` simulated devices. Output goes to
`<logs>/process<i>.log`. If any process fails, the others are stopped; the exit status is
the first non-zero one. SIGTERM to this launcher is passed to every process (a preemption:
they agree on a step, save it and exit 0).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A TCP port that was free a moment ago (the coordinator binds it next)."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def spawn(n: int, devices: int, args: list[str], logs: str, *, port: int | None = None,
          env: dict | None = None, heartbeat_s: int = 10) -> list[subprocess.Popen]:
    """Start `python -m scaling.cli ARGS` as processes 0..n-1; returns their Popen objects."""
    port = port or free_port()
    os.makedirs(logs, exist_ok=True)
    procs = []
    for i in range(n):
        penv = dict(env if env is not None else os.environ)
        penv.update(SCALING_COORDINATOR=f"localhost:{port}", SCALING_NUM_PROCESSES=str(n),
                    SCALING_PROCESS_ID=str(i), SCALING_HEARTBEAT_TIMEOUT=str(heartbeat_s),
                    XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
        penv.setdefault("JAX_PLATFORMS", "cpu")
        log = open(os.path.join(logs, f"process{i}.log"), "w")  # noqa: SIM115 - kept by Popen
        procs.append(subprocess.Popen([sys.executable, "-m", "scaling.cli", *args], env=penv,
                                      stdout=log, stderr=subprocess.STDOUT))
        log.close()  # the child holds its own descriptor
    return procs


def wait_all(procs: list[subprocess.Popen], grace_s: float = 30.0) -> int:
    """Wait for every process; once one fails, give the rest `grace_s` then kill them."""
    failed_at = None
    while any(p.poll() is None for p in procs):
        codes = [p.returncode for p in procs if p.returncode is not None]
        if failed_at is None and any(codes):
            failed_at = time.time()
        if failed_at is not None and time.time() - failed_at > grace_s:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        time.sleep(0.1)
    codes = [p.returncode for p in procs]
    return next((c for c in codes if c), 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--devices", type=int, default=4, help="simulated CPU devices each")
    parser.add_argument("--logs", default="runs/multiprocess-logs")
    parser.add_argument("--heartbeat", type=int, default=10,
                        help="seconds before a silent process counts as dead")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then `scaling` arguments")
    ns = parser.parse_args()
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    procs = spawn(ns.processes, ns.devices, args, ns.logs, heartbeat_s=ns.heartbeat)
    signal.signal(signal.SIGTERM, lambda *_: [p.send_signal(signal.SIGTERM) for p in procs])
    code = wait_all(procs)
    print(f"exit codes {[p.returncode for p in procs]}; logs in {ns.logs}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
