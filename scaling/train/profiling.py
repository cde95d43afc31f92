"""Profiling and restart cost: a jax.profiler trace of chosen steps, time to first step, and
goodput (the share of wall time spent training).

`scaling train --profile START:STOP` traces the steps after step START up to and including
step STOP (step numbers count completed steps, as metrics.jsonl does) into
`<workdir>/profile/` (view with TensorBoard's profile plugin or XProf); for a run directory
on object storage the trace is written locally and uploaded when it stops.

Where the time of a session goes (summary.json `time`, seconds):
  startup      config, mesh, data, restore or init (before the first step is dispatched)
  first_step   the first step: compilation (or a compilation-cache hit) plus one step
  eval, checkpoint, bleu, profile   those hooks, including waits on steps still running
  training     everything else between the first and the last step: steps and logging
  finish       waiting for the last checkpoint, writing the summary
goodput = training / wall time. summary.json holds the latest session's figures; every
session (fresh start or resume) appends its own to `<workdir>/sessions.jsonl`. Steps run
asynchronously, so a hook that reads device values waits for the steps before it; that wait
is counted in the hook (at most a step or two).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import defaultdict

from scaling import storage
from scaling.errors import UserError

TRAINING_HOOKS = ("nonfinite", "log", "preemption")  # part of training proper


def parse_profile(text: str | None) -> tuple[int, int] | None:
    """START:STOP -> (start, stop) with 0 <= start < stop; None passes through."""
    if text is None:
        return None
    head, sep, tail = text.partition(":")
    try:
        start, stop = int(head), int(tail)
    except ValueError:
        start, stop = -1, -1
    if not sep or start < 0 or stop <= start:
        raise UserError(f"--profile {text!r}: expected START:STOP with 0 <= START < STOP, "
                        f"e.g. --profile 10:15 traces steps 11 to 15")
    return start, stop


class Profiler:
    """Starts a jax.profiler trace after step `start` (or before the first step of a session
    that begins inside the range) and stops it after step `stop` or at the session's end."""

    def __init__(self, window: tuple[int, int] | None, workdir: str):
        self.window, self.directory = window, storage.join(workdir, "profile")
        self.active, self._local = False, None

    def begin(self, first_step: int) -> None:
        """Called before the session's first step, `first_step` steps being done."""
        if self.window and self.window[0] <= first_step < self.window[1]:
            self._start()

    def after_step(self, info) -> None:
        if not self.window:
            return
        if info.step == self.window[0]:
            self._start()
        elif info.step >= self.window[1] or info.step == info.end:
            self.close(info.metrics)

    def close(self, pending=None) -> None:
        if self.active:
            import jax

            jax.block_until_ready(pending)  # the traced steps have finished
            jax.profiler.stop_trace()
            self.active = False
            if self._local:  # traced locally: copy into the (object storage) run directory
                _copy_tree(self._local, self.directory)
                shutil.rmtree(self._local, ignore_errors=True)

    def _start(self) -> None:
        import jax

        if not self.active:
            if storage.is_remote(self.directory):
                self._local = tempfile.mkdtemp(prefix="scaling-profile-")
            else:
                os.makedirs(self.directory, exist_ok=True)
            jax.profiler.start_trace(self._local or self.directory)
            self.active = True


def _copy_tree(local: str, target: str) -> None:
    """Upload the files under the local directory `local` to `target` (a URI)."""
    for dirpath, _, names in os.walk(local):
        rel = os.path.relpath(dirpath, local)
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                parts = (name,) if rel == "." else (*rel.split(os.sep), name)
                storage.write_atomic(storage.join(target, *parts), f.read())


class Clock:
    """Wall time of one training session, by category (see the module docstring)."""

    def __init__(self, t0: float):
        self.t0, self.seconds = t0, defaultdict(float)
        self.loop_start = self.first_done = None

    def start_loop(self) -> None:
        self.loop_start = time.perf_counter()
        self.seconds["startup"] = self.loop_start - self.t0

    def first_step_done(self, metrics) -> float:
        """Block on the first step; return the time to first step (from the session start)."""
        import jax

        jax.block_until_ready(metrics)
        self.first_done = time.perf_counter()
        self.seconds["first_step"] = self.first_done - self.loop_start
        return self.first_done - self.t0

    def add(self, name: str, seconds: float) -> None:
        if name not in TRAINING_HOOKS:
            self.seconds[name] += seconds

    def summary(self, loop_end: float) -> dict:
        """{"time": {category: seconds}, "goodput": training / wall} at the session's end."""
        now = time.perf_counter()
        s = dict(self.seconds)
        hooks = sum(v for k, v in s.items() if k not in ("startup", "first_step"))
        s["training"] = max(0.0, loop_end - (self.first_done or loop_end) - hooks)
        s["finish"] = now - loop_end
        wall = now - self.t0
        return {"time": {k: round(v, 3) for k, v in s.items()},
                "goodput": round(s["training"] / wall, 4) if wall > 0 else None}


def append_session(workdir: str, summary: dict) -> None:
    """Append this session's start, end, time to first step and goodput to sessions.jsonl."""
    keys = ("start_step", "end_step", "resumed", "time_to_first_step", "compile_cache",
            "wall_time", "goodput", "time")
    path = storage.join(workdir, "sessions.jsonl")
    try:
        storage.append_text(path, json.dumps({k: summary.get(k) for k in keys}) + "\n")
    except OSError as e:
        raise UserError(f"cannot append to {path}: {storage.error_text(e)}; the run itself "
                        f"is saved (summary.json)") from None
