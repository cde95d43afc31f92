"""Faults the training loop survives: preemption (SIGTERM) and non-finite steps.

What is promised (docs/reliability.md): SIGTERM saves at the next step boundary and exits
cleanly, on every process at the same step; a non-finite step changes nothing and is logged,
and `train.max_nonfinite` of them in a row stop the job.
"""

from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils

from scaling.errors import UserError
from scaling.metrics import MetricsWriter
from scaling.train.report import finite_or_none, say


class DivergedError(UserError):
    """`train.max_nonfinite` steps in a row had a non-finite loss or gradient."""


class Preemption:
    """SIGTERM asks for a checkpoint at the next step boundary.

    One process: a Python signal handler sets a flag. Several: JAX's preemption sync
    manager (started by jax.distributed) catches SIGTERM on any process and picks one step
    that every process reaches, so all of them save the same step.
    """

    def __init__(self):
        self.requested = False
        self.multi = jax.process_count() > 1
        self._previous = None
        if not self.multi and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handler)

    def _handler(self, signum, frame):
        del signum, frame
        self.requested = True

    def reached(self, step: int) -> bool:
        """Whether to save at `step` and stop; every process must call this every step."""
        if self.multi:
            return multihost_utils.reached_preemption_sync_point(step)
        return self.requested

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class NonFiniteGuard:
    """Counts skipped (non-finite) steps, logs each, and stops after `limit` in a row.

    Metrics are checked one step late so that reading them does not stall the device queue.
    """

    def __init__(self, limit: int, writer: MetricsWriter, skipped: int):
        self.limit, self.writer, self.total = limit, writer, skipped
        self.streak, self._pending = 0, None

    def push(self, step: int, metrics: dict) -> None:
        """Record `step`'s metrics and check the previous step's."""
        self.flush()
        self._pending = (step, metrics)

    def flush(self) -> None:
        if self._pending is None:
            return
        step, m = self._pending
        self._pending = None
        if bool(m["finite"]):
            self.streak = 0
            return
        self.streak, self.total = self.streak + 1, self.total + 1
        loss, gnorm = float(m["loss"]), float(m["grad_norm"])
        self.writer.write(step, {"nonfinite": 1, "skipped": self.total,
                                 "loss": finite_or_none(loss),
                                 "grad_norm": finite_or_none(gnorm)})
        say(f"step {step}: non-finite loss {loss} or gradient norm {gnorm}; update skipped "
            f"({self.streak} in a row, {self.total} in all)")
        if self.streak >= self.limit:
            raise DivergedError(
                f"{self.streak} steps in a row (up to step {step}) had a non-finite loss or "
                f"gradient (train.max_nonfinite={self.limit}); stopped. Lower optim.lr, check "
                f"the data, or resume from an earlier checkpoint")
