"""The training driver: a `Run`, then steps with hooks after each (logging, evaluation,
preemption, checkpointing), then the run summary.

What is promised (docs/reliability.md): a job resumes from the latest committed step of its
workdir to the same numbers an uninterrupted run reaches; SIGTERM saves at the next step
boundary and exits cleanly; a non-finite step changes nothing and is logged, and
`train.max_nonfinite` of them in a row stop the job.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence

import jax
from tqdm import tqdm

from scaling import storage
from scaling.accounting import bubble_fraction
from scaling.checkpoint.manager import committed_steps
from scaling.compile_cache import CacheEvents, enable_compile_cache
from scaling.config import Config
from scaling.errors import UserError
from scaling.families import flops_per_token, param_counts
from scaling.lock import RunLock
from scaling.metrics import MetricsError, MetricsWriter, Throughput, read_rows
from scaling.train.faults import NonFiniteGuard, Preemption
from scaling.train.hooks import Evaluation, Hooks, StepInfo
from scaling.train.profiling import Clock, Profiler, append_session
from scaling.train.report import finite_or_none, say, write_json
from scaling.train.run import Run, global_batch  # noqa: F401  (global_batch: public here)


def _truncate_metrics(workdir: str, last_step: int) -> None:
    """Drop metrics.jsonl rows after `last_step` (written before a crash, about to be
    redone), so that the file holds one history."""
    path = storage.join(workdir, "metrics.jsonl")
    if not storage.path(path).exists():
        return
    rows = [r for r in read_rows(path, say) if r["step"] <= last_step]
    try:
        storage.write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))
    except OSError as e:
        raise UserError(f"cannot rewrite {path}: {storage.error_text(e)}") from None


def train(config: Config, workdir: str, *, progress: bool = True, init_from: str | None = None,
          stop_at: int | None = None, evaluations: Sequence[Evaluation] = (),
          command: str = "train", profile: tuple[int, int] | None = None) -> dict:
    """Train `config` in `workdir`, resuming from its latest checkpoint; returns (and writes)
    the run summary. `stop_at` ends this session after that step (saving a checkpoint);
    the schedule still spans `train.steps`. `evaluations` run beside the validation loss
    (the command builds them: scaling/eval/registry.py). `command` names the lock's holder.
    `profile` (start, stop) traces steps start + 1 .. stop into <workdir>/profile
    (scaling/train/profiling.py)."""
    t0 = time.perf_counter()
    enable_compile_cache(config)  # before anything compiles (scaling/compile_cache.py)
    lock = RunLock(workdir, command).acquire() if jax.process_index() == 0 else None
    events = CacheEvents().start()
    try:
        return _train_locked(config, workdir, progress, init_from, stop_at, t0, evaluations,
                             profile, events)
    finally:
        events.stop()
        if lock:
            lock.release()


def _train_locked(config, workdir, progress, init_from, stop_at, t0, evaluations=(),
                  profile=None, events=None) -> dict:
    run = Run(config, workdir, init_from=init_from, progress=progress)
    start = int(run.state.step)
    if run.lead:
        _truncate_metrics(workdir, start)
    try:
        writer = MetricsWriter(workdir, enabled=run.lead)
    except OSError as e:
        raise UserError(f"cannot write metrics in {workdir}: {e.strerror}") from None
    preempt = Preemption()
    try:
        clock = Clock(t0)
        result = _loop(run, start, writer, preempt, progress, stop_at,
                       Profiler(profile, workdir), clock, evaluations, events)
    except MetricsError as e:
        _close_quietly(run)
        steps = committed_steps(run.ckpt.directory)
        raise UserError(f"{e}; the job stopped after the last committed checkpoint (step "
                        f"{max(steps) if steps else None}): free space and rerun to resume") \
            from None
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
        "attention": run.attention,
        "resumed": start > 0, "time_to_first_step": result["first_step_s"],
        "compile_cache": events.summary(result["first_step_cache"]) if events else None,
        **clock.summary(result["loop_end"]),
        **{f"params_{k}": v for k, v in param_counts(cfg.model).items()},
        **({"pipeline_bubble": bubble_fraction(cfg.mesh.stage, cfg.train.microbatches)}
           if cfg.mesh.stage > 1 else {}),
        **run.extra_summary,
    }
    if run.lead:
        write_json(storage.join(workdir, "summary.json"), summary)
        append_session(workdir, summary)
    return summary


def _eval_history(workdir: str) -> list[float]:
    """Every eval_loss of the run so far, earlier sessions included (metrics.jsonl holds one
    history: rows past a resume point are dropped on resume)."""
    rows = read_rows(storage.join(workdir, "metrics.jsonl"))
    return [r["eval_loss"] for r in rows if r.get("eval_loss") is not None]


def _close_quietly(run: Run) -> None:
    """Let a pending save commit before an error propagates; its own error is secondary."""
    try:
        run.ckpt.close()
    except UserError as e:
        say(str(e))


def standard_hooks(run: Run, it, writer, preempt: Preemption, guard: NonFiniteGuard, bar,
                   start: int, evals: list, profiler: Profiler | None = None,
                   evaluations: Sequence[Evaluation] = ()) -> Hooks:
    """The hooks every run has, in order: (the profiler's trace window with --profile),
    non-finite guard, logging, evaluation, then the `evaluations` the command passed in
    (train/hooks.py `Evaluation`: BLEU, few-shot tasks, dev metrics; each on the evaluation
    interval), preemption, checkpointing. The evaluations go before preemption, so that a
    checkpoint follows them."""
    cfg, t = run.config, run.config.train
    meter = Throughput(flops_per_token(cfg.model, cfg.seq_len)["total"])
    step_tokens = t.global_batch * cfg.seq_len
    last = {"log": start}

    def log(info: StepInfo) -> None:
        guard.flush()
        speed = meter.update(step_tokens * (info.step - last["log"]))
        m = jax.device_get(info.metrics)
        extra = {k: finite_or_none(m[k]) for k in run.objective.metrics if k in m}
        if hasattr(run.data, "log_row"):  # a mixture: each source's share and tokens seen
            extra.update(run.data.log_row(last["log"], info.step))
        if extra.get("nll") is not None:
            extra["ppl"] = finite_or_none(math.exp(min(extra["nll"], 700.0)))
        writer.write(info.step, {"loss": finite_or_none(m["loss"]),
                                 "grad_norm": finite_or_none(m["grad_norm"]),
                                 "lr": m["lr"], "skipped": guard.total, **extra, **speed})
        bar.set_postfix(loss=f"{m['loss']:.3f}", tok_s=f"{speed['tokens_per_sec']:.0f}",
                        mfu=f"{speed['mfu']:.1%}", refresh=False)
        last["log"] = info.step

    def evaluate(info: StepInfo) -> None:
        row = run.eval_metrics()
        evals.append(row["eval_loss"])
        writer.write(info.step, row)
        meter.reset()  # evaluation time is not training throughput
        last["log"] = info.step

    def evaluation(fn):
        def run_it(info: StepInfo) -> None:
            row = fn(run.state, info.step)
            if row:
                writer.write(info.step, row)
            meter.reset()  # evaluation time is not training throughput

        return run_it

    def preemption(info: StepInfo) -> None:
        if preempt.reached(info.step):
            info.stop = info.save = True

    def checkpoint(info: StepInfo) -> None:
        guard.flush()
        writer.flush()  # the rows up to this step are in the run directory before its save
        run.save(info.step, it)

    hooks = Hooks()
    if profiler is not None and profiler.window:
        hooks.add("profile", profiler.after_step, every=1)
    hooks.add("nonfinite", lambda info: guard.push(info.step, info.metrics), every=1)
    hooks.add("log", log, every=t.log_every)
    hooks.add("eval", evaluate, every=t.eval_every, at_end=False,
              also=lambda info: info.step == info.total)
    for ev in evaluations:  # chosen by the command (scaling/eval/registry.py)
        fn = ev.start(run)
        if fn is not None:
            hooks.add(ev.name, evaluation(fn), every=t.eval_every, at_end=False,
                      also=lambda info: info.step == info.total)
    hooks.add("preemption", preemption, every=1, at_end=False)
    hooks.add("checkpoint", checkpoint, every=t.checkpoint_every, also=lambda info: info.save)
    return hooks


def _loop(run: Run, start: int, writer, preempt: Preemption, progress: bool,
          stop_at: int | None, profiler: Profiler, clock: Clock,
          evaluations: Sequence[Evaluation] = (), events: CacheEvents | None = None) -> dict:
    """Steps `start`.. until train.steps, `stop_at` or preemption, with the hooks after each."""
    cfg, t = run.config, run.config.train
    end = min(t.steps, stop_at) if stop_at else t.steps
    it = run.data.iterator(start)
    if run.data_state is not None:
        it.set_state(run.data_state)  # the saved position; warns if the data changed
    guard = NonFiniteGuard(t.max_nonfinite, writer, int(run.state.skipped))
    bar = tqdm(total=end, initial=start, disable=not (progress and run.lead),
               dynamic_ncols=True, mininterval=1.0)
    evals: list[float] = []
    hooks = standard_hooks(run, it, writer, preempt, guard, bar, start, evals, profiler,
                           evaluations)
    hooks.timer = clock.add
    done, preempted, first_s, first_cache = start, False, None, None
    mark = events.mark() if events else None
    clock.start_loop()
    profiler.begin(start)
    try:
        for step in range(start, end):
            run.state, m = run.train_fn(run.state, run.next_batch(it), run.dropout_key)
            done = step + 1
            if first_s is None:
                first_s = clock.first_step_done(m)
                first_cache = events.since(mark) if events else None
                if progress:
                    say(f"first step after {first_s:.1f} s "
                        f"({'resume' if start else 'fresh start'})")
            info = StepInfo(done, end, t.steps, m)
            hooks.run(info)
            bar.update(1)
            if info.stop:
                preempted = True
                say(f"preemption requested: saved step {done}; rerun the same command to "
                    f"resume")
                break
        guard.flush()
    finally:
        profiler.close()
        bar.close()
    return {"evals": evals, "end": done, "preempted": preempted, "skipped": guard.total,
            "fpt": flops_per_token(cfg.model, cfg.seq_len)["total"],
            "first_step_s": first_s, "first_step_cache": first_cache,
            "loop_end": time.perf_counter()}
