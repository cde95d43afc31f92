"""Throughput, model FLOPs utilization, and the run directory's metrics writers.

MFU = achieved model FLOP/s ÷ dense bf16 peak of the devices (PaLM App. B convention, with
FLOPs per token from scaling/accounting.py: 6·N matmul + the causal-halved attention
term). On CPU there is no published peak: we report achieved FLOP/s and its ratio to a large
float32 matmul measured on the same host.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from scaling import storage
from scaling.errors import UserError

# Dense bf16 peak FLOP/s per chip, matched against `device.device_kind` (lower-cased).
PEAK_BF16 = (
    ("h100", 989e12),
    ("h200", 989e12),
    ("a100", 312e12),
    ("v6", 918e12),
    ("v5p", 459e12),
    ("v5 lite", 197e12),
    ("v5e", 197e12),
    ("v4", 275e12),
)


def device_peak_flops(device=None) -> float | None:
    """Dense bf16 peak of one device, or None when the kind is not in the table (e.g. CPU)."""
    device = device or jax.devices()[0]
    kind = device.device_kind.lower()
    for key, peak in PEAK_BF16:
        if key in kind:
            return peak
    return None


def host_matmul_flops(n: int = 2048, repeats: int = 3) -> float:
    """Achieved FLOP/s of an n×n float32 matmul on the host CPU (the CPU's practical peak)."""
    cpu = jax.devices("cpu")[0]
    a = jax.device_put(jnp.ones((n, n), jnp.float32), cpu)
    mm = jax.jit(lambda x: x @ x)
    mm(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        mm(a).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n**3 / best


class Throughput:
    """Tokens/s, achieved FLOP/s and MFU between successive `update` calls."""

    def __init__(self, flops_per_token: float, n_devices: int | None = None):
        self.flops_per_token = flops_per_token
        n_devices = n_devices or jax.device_count()
        peak = device_peak_flops()
        if peak is not None:
            self.peak, self.peak_name = peak * n_devices, "bf16 peak"
        else:  # CPU: all simulated devices share one host, so compare to the host's matmul
            self.peak, self.peak_name = host_matmul_flops(), "host f32 matmul"
        self._t = time.perf_counter()

    def reset(self) -> None:
        self._t = time.perf_counter()

    def update(self, tokens: float) -> dict:
        now = time.perf_counter()
        dt, self._t = max(now - self._t, 1e-9), now
        tps = tokens / dt
        achieved = tps * self.flops_per_token
        return {"tokens_per_sec": tps, "flops_per_sec": achieved, "mfu": achieved / self.peak}


class MetricsError(UserError):
    """metrics.jsonl could not be written (a full disk, say): the job stops."""


def read_rows(path: str, warn=None) -> list[dict]:
    """The rows of a metrics.jsonl (a local path or a URI); a line that does not parse (a
    write torn by a crash or a full disk) is dropped, with `warn(message)`."""
    rows = []
    text = storage.path(path).read_bytes().decode("utf-8", errors="replace")
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            if warn:
                warn(f"{path}:{n}: dropped a torn or unreadable row")
            continue
        rows.append(row)
    return rows


class MetricsWriter:
    """metrics.jsonl (one JSON object per logged step) and TensorBoard events, process 0 only.

    On object storage (a gs:// workdir) the rows are uploaded at most every 30 s and at each
    `flush()` (before every checkpoint, so a resume finds the rows up to its step), and the
    TensorBoard events are written locally and copied into the workdir by `flush()` and
    `close()`: an object cannot be appended to."""

    def __init__(self, workdir: str, enabled: bool = True):
        self.enabled, self.workdir = enabled, workdir
        self._jsonl = self._tb = self._tb_local = None
        if not enabled:
            return
        storage.makedirs(workdir)
        self._jsonl = storage.open_append(storage.join(workdir, "metrics.jsonl"))
        from tensorboardX import SummaryWriter

        if storage.is_remote(workdir):
            import tempfile

            self._tb_local = tempfile.mkdtemp(prefix="scaling-tb-")
        self._tb = SummaryWriter(logdir=self._tb_local or workdir, flush_secs=30)

    def write(self, step: int, values: dict) -> None:
        """Append one row (written and flushed as one line; a failed write raises
        MetricsError, and a torn last line is dropped on resume: `read_rows`)."""
        if not self.enabled:
            return
        row = {"step": int(step)}
        row.update({k: _plain(v) for k, v in values.items()})
        try:
            self._write_line(json.dumps(row) + "\n")
        except OSError as e:
            raise MetricsError(f"cannot write {self._jsonl.name}: {storage.error_text(e)}") \
                from None
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                self._tb.add_scalar(key, value, step)

    def _write_line(self, text: str) -> None:
        self._jsonl.write(text)
        self._jsonl.flush()

    def flush(self) -> None:
        """Make everything written so far durable in the run directory (for object storage:
        upload it now)."""
        if not self._jsonl:
            return
        if self._tb_local is None:
            self._jsonl.flush()
            return
        try:
            self._jsonl.flush(force=True)
            self._tb.flush()
            self._copy_events()
        except Exception as e:  # noqa: BLE001 - any storage error stops the job cleanly
            raise MetricsError(f"cannot write metrics to {self.workdir}: "
                               f"{storage.error_text(e)}") from None

    def _copy_events(self) -> None:
        for name in os.listdir(self._tb_local):
            with open(os.path.join(self._tb_local, name), "rb") as f:
                storage.write_atomic(storage.join(self.workdir, name), f.read())

    def close(self) -> None:
        if self._jsonl:
            try:
                self._jsonl.close()
                self._tb.close()
                if self._tb_local is not None:
                    self._copy_events()
                    import shutil

                    shutil.rmtree(self._tb_local, ignore_errors=True)
            finally:
                self._jsonl = self._tb = None


def _plain(v):
    if isinstance(v, (np.generic, np.ndarray, jax.Array)):
        v = np.asarray(v).item()
    return v
