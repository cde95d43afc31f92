"""One training run between steps: validated config, mesh, data, state, compiled steps,
checkpoints. `Run(config, workdir)` does it in named steps: validate, workdir, mesh, data,
restore or init, compile.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from scaling import sharding, storage
from scaling.checkpoint.compat import (
    check_resumable,
    check_resume_metadata,
    check_tokenizer,
    config_changes,
    flat_shapes,
    run_metadata,
)
from scaling.checkpoint.manager import Checkpoints, DamagedCheckpointError, checkpoint_dir
from scaling.config import Config
from scaling.data.tokenizers.run_copy import keep_copy
from scaling.errors import UserError
from scaling.families import family_of, objective_of
from scaling.families.schema import check_batch
from scaling.platform import attention_line, attention_summary, resolve
from scaling.rng import dropout_key
from scaling.train.optimizer import make_optimizer
from scaling.train.report import pipeline_report, say, write_json
from scaling.train.state import init_state, sharded_abstract_state
from scaling.train.step import compile_steps
from scaling.validate import validate


def global_batch(local: dict, mesh) -> dict:
    """Assemble this process's rows (its `sharding.batch_share` of the batch) into global
    arrays sharded over replica × data × fsdp."""
    _, count = sharding.batch_share(mesh)
    return {k: jax.make_array_from_process_local_data(
                sharding.batch_sharding(mesh, np.ndim(v)), np.asarray(v),
                (np.shape(v)[0] * count, *np.shape(v)[1:]))
            for k, v in local.items()}


def evaluate(eval_fn, params, batches: list[dict], mesh) -> dict:
    """Token-weighted mean loss (`eval_loss`) and each objective metric (`eval_<name>`) over
    the fixed validation batches."""
    total = weight = 0.0
    sums: dict[str, list[float]] = {}
    for b in batches:
        t, w, metrics = eval_fn(params, global_batch(b, mesh))
        total, weight = total + float(t), weight + float(w)
        for name, (num, den) in metrics.items():
            acc = sums.setdefault(name, [0.0, 0.0])
            acc[0], acc[1] = acc[0] + float(num), acc[1] + float(den)
    out = {"eval_loss": total / max(weight, 1.0)}
    out.update({f"eval_{k}": n / max(d, 1.0) for k, (n, d) in sums.items()})
    if "eval_nll" in out:  # perplexity of the unsmoothed loss
        out["eval_ppl"] = math.exp(min(out["eval_nll"], 700.0))
    return out


def evaluate_mixture(eval_fn, params, sets: dict, mesh) -> dict:
    """Each source's `evaluate` row with keys suffixed `/<name>`, and their weighted mean
    (sets: {name: (weight, batches)}; scaling/data/mixture.py) under the plain keys."""
    rows = {name: (w, evaluate(eval_fn, params, batches, mesh))
            for name, (w, batches) in sets.items()}
    first = next(iter(rows.values()))[1]
    out = {k: sum(w * r[k] for w, r in rows.values()) for k in first}
    if "eval_nll" in out:
        out["eval_ppl"] = math.exp(min(out["eval_nll"], 700.0))
    for name, (_, row) in rows.items():
        out.update({f"{k}/{name}": v for k, v in row.items()})
    return out


class Run:
    """Everything one training run holds between steps: mesh, data, state, checkpoints.

    `config` is the run's config as given (written to config.json, `auto` kept); `resolved`
    has `auto` dtype and attention fixed for the mesh's platform and is what is compiled.
    """

    def __init__(self, config: Config, workdir: str, *, init_from: str | None = None,
                 progress: bool = True):
        self.config = validate(config)
        self.progress = progress  # progress lines while data is built
        self.family, self.objective = family_of(config.model), objective_of(config)
        self.workdir, self.lead = workdir, jax.process_index() == 0
        self.extra_summary: dict = {}  # hooks add to summary.json (fine-tuning: best step)
        self._make_workdir()
        self.mesh = sharding.make_mesh(self.config.mesh, config=self.config)
        self.resolved = resolve(self.config, self.mesh.devices.flat)
        self.attention = attention_summary(self.config, self.mesh.devices.flat)
        self._load_data()
        self._restore_or_init(init_from)
        # start-up lines once the data and the checkpoint are known good: bad input above
        # ends in its one error line alone
        say(attention_line(self.config, self.mesh.devices.flat))
        if self.config.mesh.stage > 1:
            say(pipeline_report(self.config))
        self.train_fn, self.eval_fn = compile_steps(
            self.resolved, self.tx, self.mesh, self.shardings)
        self.eval_batches = self.data.eval_batches()
        if self.lead:
            write_json(storage.join(workdir, "config.json"), self.config.to_dict())

    def _make_workdir(self) -> None:
        try:
            storage.makedirs(self.workdir)
        except OSError as e:
            raise UserError(f"cannot create run directory {self.workdir}: "
                            f"{storage.error_text(e)}") from None

    def _load_data(self) -> None:
        index, count = sharding.batch_share(self.mesh)  # processes on other stages: same rows
        self.data = self.objective.load_data(self.config, process_index=index,
                                             process_count=count, progress=self.progress)
        if self.data.tokenizer.vocab_size > self.config.model.vocab_size:
            raise UserError(
                f"tokenizer has {self.data.tokenizer.vocab_size} tokens but "
                f"model.vocab_size={self.config.model.vocab_size}; raise model.vocab_size")
        self.meta = run_metadata(self.mesh, self.data.tokenizer)
        if self.lead:  # generate/eval read this copy even if the corpus changes later
            keep_copy(self.data.tokenizer, self.workdir)

    def _restore_or_init(self, init_from: str | None) -> None:
        """The state and saved data-iterator state (None when fresh): resume the latest
        committed step, or initialize (from `init_from`'s parameters when given)."""
        self.tx = make_optimizer(self.config.optim, self.config.train.steps)
        self.ckpt = Checkpoints(checkpoint_dir(self.workdir), self.config.train)
        # restore target and layout, from one eval_shape of the init (nothing allocated)
        self.target, self.shardings = sharded_abstract_state(self.resolved, self.tx, self.mesh)
        base = jax.random.key(self.config.train.seed)
        self.dropout_key = dropout_key(self.config.train)  # fold_in(base, 1); scaling/rng.py
        if self.ckpt.latest_step() is not None:
            if init_from:
                say(f"--init_from {init_from} ignored: {self.workdir} already has checkpoints")
            self.state, self.data_state = self._resume_latest_readable()
            return
        self.state, _ = init_state(self.resolved, self.tx, self.mesh, jax.random.fold_in(base, 0),
                                   self.shardings)
        if init_from:
            self.state = self.state.replace(params=self._init_params(init_from))
        self.data_state = None

    def _resume_latest_readable(self):
        """Resume the newest step that reads back; a damaged one is reported, moved aside to
        `<step>.damaged` and the previous committed step tried (docs/reliability.md)."""
        steps = self.ckpt.all_steps()
        for step in reversed(steps):
            try:
                return self._resume(step)
            except DamagedCheckpointError as e:
                moved = self.ckpt.quarantine(step) if self.lead else "(left for process 0)"
                say(f"checkpoint step {step} is damaged ({e}); moved aside to {moved}; "
                    f"trying the previous step")
        raise UserError(f"no readable checkpoint in {self.ckpt.directory}: all of steps "
                        f"{steps} are damaged (moved aside as <step>.damaged); remove the "
                        f"run directory's checkpoints to start over")

    def _resume(self, step: int):
        saved = self.ckpt.verify(step)
        check_resumable(saved["tree"], self.workdir, step)  # not `scaling convert`'s params
        check_resume_metadata(saved["meta"], self.meta)
        changed = config_changes(saved["config"], self.config.to_dict())
        restored = self.ckpt.restore(step, self.target, saved["tree"])
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
        if self.objective.make_model is None:
            params = other.restore_params(step, self.target.params)
        else:  # a task head on a backbone: restore the backbone, keep the fresh head
            params = self._init_backbone(other, step, source)
        other.manager.close()
        say(f"initialized parameters from step {step} of {other.directory}")
        return params

    def _init_backbone(self, other: Checkpoints, step: int, source: str):
        """The fresh task model's parameters with `backbone/` restored from `other`; the
        head's parameter paths are listed."""
        try:
            backbone = other.restore_params(step, self.target.params["backbone"])
        except UserError as e:
            other.manager.close()
            detail = str(e).split("(", 1)[-1].split(". Use", 1)[0].rstrip(")")
            raise UserError(f"--init_from {source}: its parameters do not fit this model's "
                            f"backbone ({detail}); fine-tune with the backbone's own model "
                            f"settings (no --config, no model.* overrides)") from None
        head = {k: v for k, v in self.state.params.items() if k != "backbone"}
        say("fresh task head: " + ", ".join(f"{p} {list(s)}"
                                            for p, s in flat_shapes(head).items()))
        return {**self.state.params, "backbone": backbone}

    def next_batch(self, iterator) -> dict:
        """The iterator's next local batch, checked against the objective's schema and
        assembled into a global sharded batch."""
        local = next(iterator)
        check_batch(self.objective.batch_fields(self.config), local, self.data.local_batch,
                    self.config.seq_len, self.objective.name)
        return global_batch(local, self.mesh)

    def eval_metrics(self) -> dict:
        if hasattr(self.data, "eval_sets"):  # a mixture: per-source losses too
            return evaluate_mixture(self.eval_fn, self.state.params, self.data.eval_sets(),
                                    self.mesh)
        return evaluate(self.eval_fn, self.state.params, self.eval_batches, self.mesh)

    def save(self, step: int, iterator) -> None:
        """Start an async checkpoint of `step` (the iterator's position goes with it)."""
        self.ckpt.save(step, self.state, data=iterator.get_state(),
                       config=self.config.to_dict(), meta=self.meta)
