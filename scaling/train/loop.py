"""The training driver: data, sharded state, the compiled step, logging, evaluation, and the
checkpoint life cycle (resume, periodic async saves, preemption, non-finite steps).

What is promised (RELIABILITY.md): a job resumes from the latest committed step of its
workdir to the same numbers an uninterrupted run reaches; SIGTERM saves at the next step
boundary and exits cleanly; a non-finite step changes nothing and is logged, and
`train.max_nonfinite` of them in a row stop the job.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time

import jax
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from scaling import sharding
from scaling.checkpoint import (
    Checkpoints,
    check_resume_metadata,
    check_tokenizer,
    checkpoint_dir,
    run_metadata,
)
from scaling.config import Config, validate
from scaling.errors import UserError
from scaling.laws.accounting import flops_per_token, param_counts
from scaling.metrics import MetricsWriter, Throughput
from scaling.train.optimizer import make_optimizer
from scaling.train.state import init_state, sharded_abstract_state
from scaling.train.step import compile_steps


class DivergedError(UserError):
    """`train.max_nonfinite` steps in a row had a non-finite loss or gradient."""


def say(message: str) -> None:
    """One status line on stderr, from process 0 only (kept clear of the progress bar)."""
    if jax.process_index() == 0:
        tqdm.write(f"scaling: {message}", file=sys.stderr)


def global_batch(local: dict, mesh) -> dict:
    """Assemble this process's rows into global arrays sharded over data × fsdp."""
    sh = sharding.batch_sharding(mesh, 1)
    return {k: jax.make_array_from_process_local_data(sh, np.asarray(v)) for k, v in local.items()}


def evaluate(eval_fn, params, batches: list[dict], mesh) -> float:
    """Token-weighted mean loss over the fixed validation batches."""
    total = weight = 0.0
    for b in batches:
        t, w = eval_fn(params, global_batch(b, mesh))
        total, weight = total + float(t), weight + float(w)
    return total / max(weight, 1.0)


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None


def _finite_or_none(v):
    """JSON has no NaN: a non-finite metric is written as null."""
    v = float(v)
    return v if math.isfinite(v) else None


class Run:
    """Everything one training run holds between steps: mesh, data, state, checkpoints."""

    def __init__(self, config: Config, workdir: str, *, init_from: str | None = None):
        from scaling.data import load_data  # lazy: tfds/grain are not needed to import

        self.config = validate(config)
        self.workdir = workdir
        self.lead = jax.process_index() == 0
        try:
            os.makedirs(workdir, exist_ok=True)
        except OSError as e:
            raise UserError(f"cannot create run directory {workdir}: {e.strerror}") from None
        self.mesh = sharding.make_mesh(self.config.mesh, config=self.config)
        self.data = load_data(self.config)  # LM, masked LM or seq2seq by family
        if self.data.tokenizer.vocab_size > self.config.model.vocab_size:
            raise UserError(
                f"tokenizer has {self.data.tokenizer.vocab_size} tokens but "
                f"model.vocab_size={self.config.model.vocab_size}; raise model.vocab_size")
        self.tx = make_optimizer(self.config.optim, self.config.train.steps)
        self.meta = run_metadata(self.mesh, self.data.tokenizer)
        self.ckpt = Checkpoints(checkpoint_dir(workdir), self.config.train)
        # restore target and layout, from one eval_shape of the init (nothing allocated)
        self.target, self.shardings = sharded_abstract_state(self.config, self.tx, self.mesh)
        base = jax.random.key(self.config.train.seed)
        self.dropout_key = jax.random.fold_in(base, 1)
        self.state, self.data_state = self._start(init_from, jax.random.fold_in(base, 0))
        self.train_fn, self.eval_fn = compile_steps(
            self.config, self.tx, self.mesh, self.shardings)
        self.eval_batches = self.data.eval_batches()
        if self.lead:
            _write_json(os.path.join(workdir, "config.json"), self.config.to_dict())

    def _start(self, init_from: str | None, key: jax.Array):
        """(state, saved data-iterator state or None): resume, fine-tune, or initialize."""
        latest = self.ckpt.latest_step()
        if latest is not None:
            if init_from:
                say(f"--init_from {init_from} ignored: {self.workdir} already has checkpoints")
            return self._resume(latest)
        state, _ = init_state(self.config, self.tx, self.mesh, key, self.shardings)
        if init_from:
            state = state.replace(params=self._init_params(init_from))
        return state, None

    def _resume(self, step: int):
        saved_meta = self.ckpt.read_json(step, "meta")
        check_resume_metadata(saved_meta, self.meta)
        saved_config = self.ckpt.read_json(step, "config")
        changed = _config_changes(saved_config, self.config.to_dict())
        restored = self.ckpt.restore(step, self.target)
        say(f"resuming from step {step} of {self.ckpt.directory}"
            + (f" (config changed: {', '.join(changed)})" if changed else ""))
        return restored["state"], restored["data"]

    def _init_params(self, source: str):
        """Parameters of the latest step of run directory `source`; optimizer state stays
        fresh and the step at 0 (fine-tuning)."""
        other = Checkpoints(checkpoint_dir(source), read_only=True)
        step = other.latest_step()
        if step is None:
            raise UserError(f"--init_from {source}: no committed checkpoint in "
                            f"{other.directory}")
        check_tokenizer(other.read_json(step, "meta"), self.meta)
        params = other.restore_params(step, self.target.params)
        other.manager.close()
        say(f"initialized parameters from step {step} of {other.directory}")
        return params

    def eval_loss(self) -> float:
        return evaluate(self.eval_fn, self.state.params, self.eval_batches, self.mesh)

    def save(self, step: int, iterator) -> None:
        """Start an async checkpoint of `step` (the iterator's position goes with it)."""
        self.ckpt.save(step, self.state, data=iterator.get_state(),
                       config=self.config.to_dict(), meta=self.meta)


def _config_changes(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """'section.key old -> new' for every value that differs between two config dicts."""
    out = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key} {a} -> {b}")
    return out


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
                                 "loss": _finite_or_none(loss),
                                 "grad_norm": _finite_or_none(gnorm)})
        say(f"step {step}: non-finite loss {loss} or gradient norm {gnorm}; update skipped "
            f"({self.streak} in a row, {self.total} in all)")
        if self.streak >= self.limit:
            raise DivergedError(
                f"{self.streak} steps in a row (up to step {step}) had a non-finite loss or "
                f"gradient (train.max_nonfinite={self.limit}); stopped. Lower optim.lr, check "
                f"the data, or resume from an earlier checkpoint")


def _truncate_metrics(workdir: str, last_step: int) -> None:
    """Drop metrics.jsonl rows after `last_step` (written before a crash, about to be
    redone), so that the file holds one history."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        rows = [line for line in f if line.strip() and json.loads(line)["step"] <= last_step]
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.writelines(rows)
    os.replace(path + ".tmp", path)


def train(config: Config, workdir: str, *, progress: bool = True, init_from: str | None = None,
          stop_at: int | None = None) -> dict:
    """Train `config` in `workdir`, resuming from its latest checkpoint; returns (and writes)
    the run summary. `stop_at` ends this session after that step (saving a checkpoint);
    the schedule still spans `train.steps`."""
    t0 = time.perf_counter()
    run = Run(config, workdir, init_from=init_from)
    start = int(run.state.step)
    if run.lead:
        _truncate_metrics(workdir, start)
    try:
        writer = MetricsWriter(workdir, enabled=run.lead)
    except OSError as e:
        raise UserError(f"cannot write metrics in {workdir}: {e.strerror}") from None
    preempt = Preemption()
    try:
        result = _loop(run, start, writer, preempt, progress, stop_at)
    except BaseException:
        _close_quietly(run)
        raise
    finally:
        preempt.close()
        writer.close()
    run.ckpt.close()  # waits for the last save; a failed save is a UserError here
    cfg = run.config
    evals = _eval_history(workdir) if run.lead else result["evals"]
    summary = {
        "final_eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
        "unigram_entropy": getattr(run.data, "unigram_entropy", None),
        "steps": cfg.train.steps, "start_step": start, "end_step": result["end"],
        "preempted": result["preempted"], "skipped": result["skipped"],
        "tokens": (result["end"] - start) * cfg.train.global_batch * cfg.seq_len,
        "wall_time": time.perf_counter() - t0,
        "flops_per_token": result["fpt"],
        **{f"params_{k}": v for k, v in param_counts(cfg.model).items()},
    }
    if run.lead:
        _write_json(os.path.join(workdir, "summary.json"), summary)
    return summary


def _eval_history(workdir: str) -> list[float]:
    """Every eval_loss of the run so far, earlier sessions included (metrics.jsonl holds one
    history: rows past a resume point are dropped on resume)."""
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["eval_loss"] for r in rows if r.get("eval_loss") is not None]


def _close_quietly(run: Run) -> None:
    """Let a pending save commit before an error propagates; its own error is secondary."""
    try:
        run.ckpt.close()
    except UserError as e:
        say(str(e))


def _log_step(writer, bar, step: int, metrics: dict, speed: dict, skipped: int) -> None:
    """One metrics.jsonl row (non-finite values as null) and the progress bar's numbers."""
    m = jax.device_get(metrics)
    writer.write(step, {"loss": _finite_or_none(m["loss"]),
                        "grad_norm": _finite_or_none(m["grad_norm"]),
                        "lr": m["lr"], "skipped": skipped, **speed})
    bar.set_postfix(loss=f"{m['loss']:.3f}", tok_s=f"{speed['tokens_per_sec']:.0f}",
                    mfu=f"{speed['mfu']:.1%}", refresh=False)


def _loop(run: Run, start: int, writer, preempt: Preemption, progress: bool,
          stop_at: int | None) -> dict:
    """Steps `start`.. until train.steps, `stop_at` or preemption; saves on the way."""
    cfg, t = run.config, run.config.train
    end = min(t.steps, stop_at) if stop_at else t.steps
    fpt = flops_per_token(cfg.model, cfg.seq_len)["total"]
    meter = Throughput(fpt)
    it = run.data.iterator(start)
    if run.data_state is not None:
        it.set_state(run.data_state)  # the saved position; warns if the data changed
    guard = NonFiniteGuard(t.max_nonfinite, writer, int(run.state.skipped))
    bar = tqdm(total=end, initial=start, disable=not (progress and run.lead),
               dynamic_ncols=True, mininterval=1.0)
    evals, last_log, done, preempted = [], start, start, False
    step_tokens = t.global_batch * cfg.seq_len
    try:
        for step in range(start, end):
            run.state, m = run.train_fn(run.state, global_batch(next(it), run.mesh),
                                        run.dropout_key)
            done = step + 1
            guard.push(done, m)
            if done % t.log_every == 0 or done == end:
                guard.flush()
                speed = meter.update(step_tokens * (done - last_log))
                _log_step(writer, bar, done, m, speed, guard.total)
                last_log = done
            if done % t.eval_every == 0 or done == t.steps:
                evals.append(run.eval_loss())
                writer.write(done, {"eval_loss": evals[-1]})
                meter.reset()  # evaluation time is not training throughput
                last_log = done
            preempted = preempt.reached(done)
            if preempted or done % t.checkpoint_every == 0 or done == end:
                guard.flush()
                run.save(done, it)
            bar.update(1)
            if preempted:
                say(f"preemption requested: saved step {done}; rerun the same command to "
                    f"resume")
                break
        guard.flush()
    finally:
        bar.close()
    return {"evals": evals, "end": done, "preempted": preempted, "skipped": guard.total,
            "fpt": fpt}
