"""The training driver: data, sharded state, the compiled step, logging, evaluation."""

from __future__ import annotations

import json
import os
import time

import jax
import numpy as np
from tqdm import tqdm

from scaling import sharding
from scaling.config import Config, validate
from scaling.errors import UserError
from scaling.laws.accounting import flops_per_token, param_counts
from scaling.metrics import MetricsWriter, Throughput
from scaling.train.optimizer import make_optimizer
from scaling.train.state import init_state
from scaling.train.step import compile_steps


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
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


class Run:
    """Everything one training run holds between steps."""

    def __init__(self, config: Config, workdir: str):
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
        base = jax.random.key(self.config.train.seed)
        self.dropout_key = jax.random.fold_in(base, 1)
        self.state, self.shardings = init_state(
            self.config, self.tx, self.mesh, jax.random.fold_in(base, 0))
        self.train_fn, self.eval_fn = compile_steps(
            self.config, self.tx, self.mesh, self.shardings)
        self.eval_batches = self.data.eval_batches()
        if self.lead:
            _write_json(os.path.join(workdir, "config.json"), self.config.to_dict())

    def eval_loss(self) -> float:
        return evaluate(self.eval_fn, self.state.params, self.eval_batches, self.mesh)


def train(config: Config, workdir: str, *, progress: bool = True) -> dict:
    """Train `config` in `workdir`; returns (and writes) the run summary."""
    t0 = time.perf_counter()
    run = Run(config, workdir)
    cfg, t = run.config, run.config.train
    fpt = flops_per_token(cfg.model, cfg.seq_len)["total"]
    meter = Throughput(fpt)
    writer = MetricsWriter(workdir, enabled=run.lead)
    start = int(run.state.step)
    it = run.data.iterator(start)
    bar = tqdm(total=t.steps, initial=start, disable=not (progress and run.lead),
               dynamic_ncols=True, mininterval=1.0)
    evals, tokens, last_log = [], 0, start
    step_tokens = t.global_batch * cfg.seq_len
    try:
        for step in range(start, t.steps):
            run.state, m = run.train_fn(run.state, global_batch(next(it), run.mesh),
                                        run.dropout_key)
            done = step + 1
            if done % t.log_every == 0 or done == t.steps:
                m = jax.device_get(m)  # waits for the step: the interval's time is real
                speed = meter.update(step_tokens * (done - last_log))
                last_log = done
                row = {"loss": m["loss"], "grad_norm": m["grad_norm"], "lr": m["lr"],
                       "skipped": int(run.state.skipped), **speed}
                writer.write(done, row)
                bar.set_postfix(loss=f"{m['loss']:.3f}", tok_s=f"{speed['tokens_per_sec']:.0f}",
                                mfu=f"{speed['mfu']:.1%}", refresh=False)
            if done % t.eval_every == 0 or done == t.steps:
                loss = run.eval_loss()
                evals.append(loss)
                writer.write(done, {"eval_loss": loss})
                meter.reset()  # evaluation time is not training throughput
                last_log = done
            bar.update(1)
        tokens = (t.steps - start) * step_tokens
    finally:
        bar.close()
        writer.close()
    summary = {
        "final_eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
        "unigram_entropy": getattr(run.data, "unigram_entropy", None),
        "steps": t.steps, "tokens": tokens, "wall_time": time.perf_counter() - t0,
        "flops_per_token": fpt, **{f"params_{k}": v for k, v in param_counts(cfg.model).items()},
    }
    if run.lead:
        _write_json(os.path.join(workdir, "summary.json"), summary)
    return summary
