"""Fine-tuning evaluation: predictions over a whole split in file order, the task's metrics
(scaling/eval/glue_metrics.py), the best checkpoint.

In training (a fine-tuning objective, one with a task head): at each evaluation the dev split
is scored in full; `dev_<metric>` rows go to metrics.jsonl, and when the task's dev metric
(finetune.metric, default by task type) improves the state is saved to `<workdir>/best/<step>`
(one kept), which summary.json names. A resumed run re-reads the best so far from
metrics.jsonl.

`scaling eval --workdir FT_RUN --tasks finetune [--split test] [--predictions FILE]`:
re-score a fine-tuning run's dev (or test) split with its best checkpoint (else its latest),
print the metrics as one JSON line, and write one prediction a line in the file's order.

Legend: B global batch, K head outputs.
"""

from __future__ import annotations

import json

import jax
import numpy as np

from scaling import sharding, storage
from scaling.errors import UserError
from scaling.eval.glue_metrics import DEFAULT_METRIC, task_metrics
from scaling.metrics import read_rows
from scaling.train.report import say

BEST_DIR = "best"


def predict_fn(config, mesh, param_shardings, task_logits):
    """jit: (params, global batch) -> the head's outputs [B, K] (float32, replicated)."""
    from scaling.families import build_model, family_of, objective_of

    model = build_model(config, "eval", config.model.attention)
    family = family_of(config.model)
    batch_sh = sharding.batch_shardings(objective_of(config).fields, mesh)

    def fn(params, batch):
        with sharding.axis_rules(), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
            return task_logits(model.apply({"params": params}, *family.model_args(batch)))

    return jax.jit(fn, in_shardings=(param_shardings, batch_sh),
                   out_shardings=sharding.replicated(mesh))


def predict(fn, params, data, split: str, mesh) -> np.ndarray:
    """The head's outputs for every example of `split`, in file order: [N, K]."""
    from scaling.train.run import global_batch

    out = []
    for local, real in data.ordered_batches(split):
        out.append(np.asarray(jax.device_get(fn(params, global_batch(local, mesh))))[:real])
    return np.concatenate(out)


def decide(task_type: str, outputs: np.ndarray) -> np.ndarray:
    """Class (choice) ids, or scores for regression."""
    return outputs[:, 0] if task_type == "regression" else np.argmax(outputs, -1)


def score(task, outputs: np.ndarray, split: str) -> dict[str, float]:
    gold = np.asarray([e.label for e in task.splits[split]], np.float64)
    pred = decide(task.task_type, outputs)
    if task.task_type != "regression":
        gold = gold.astype(np.int64)
    return task_metrics(task.task_type, task.num_labels, pred, gold)


def metric_name(config) -> str:
    return config.finetune.metric or DEFAULT_METRIC[config.finetune.task_type]


def _best_so_far(workdir: str, key: str) -> tuple[float | None, int | None]:
    path = storage.join(workdir, "metrics.jsonl")
    rows = [r for r in read_rows(path) if r.get(key) is not None] \
        if storage.path(path).exists() else []
    if not rows:
        return None, None
    best = max(rows, key=lambda r: (r[key], -r["step"]))
    return best[key], best["step"]


def best_summary(workdir: str, name: str, value, step) -> dict:
    return {"best_metric": name, "best_value": value, "best_step": step,
            "best_checkpoint": (storage.join(storage.absolute(workdir), BEST_DIR, str(step))
                                if step is not None else None)}


class TaskMetrics:
    """The evaluator: parameters in, one row out, the task's metrics on `split` (empty when
    the split has no labels). The head's outputs of the last call stay in `outputs` [N, K]
    (for predictions)."""

    def __init__(self, config, mesh, param_shardings, task_logits, data, split: str):
        self.fn = predict_fn(config, mesh, param_shardings, task_logits)
        self.data, self.split, self.mesh = data, split, mesh
        self.outputs = None

    def __call__(self, params) -> list[dict]:
        self.outputs = predict(self.fn, params, self.data, self.split, self.mesh)
        if not all(e.label is not None for e in self.data.task.splits[self.split]):
            return [{}]
        return [score(self.data.task, self.outputs, self.split)]


def in_training(config):
    """The `task_eval` evaluation of a fine-tuning run (see the module doc); none for a run
    without a task head."""
    from scaling.families import objective_of

    if objective_of(config).task_logits is None:
        return None
    from scaling.train.hooks import Evaluation

    return Evaluation("task_eval", _start)


def _start(run):
    from scaling.checkpoint.manager import Checkpoints
    from scaling.config import TrainConfig

    cfg = run.config
    metrics = TaskMetrics(run.resolved, run.mesh, run.shardings.params,
                          run.objective.task_logits, run.data, "validation")
    name = metric_name(cfg)
    best = dict(zip(("value", "step"), _best_so_far(run.workdir, f"dev_{name}"), strict=True))
    run.extra_summary = best_summary(run.workdir, name, best["value"], best["step"])

    def task_eval(state, step) -> dict:
        (scores,) = metrics(state.params)
        if name not in scores:
            raise UserError(f"finetune.metric={name!r}: a {cfg.finetune.task_type} task "
                            f"reports {', '.join(scores)}")
        if best["value"] is None or scores[name] > best["value"]:
            best.update(value=scores[name], step=step)
            ckpt = Checkpoints(storage.join(run.workdir, BEST_DIR), TrainConfig(keep_last=1))
            ckpt.save(step, state, data={"step": step}, config=cfg.to_dict(),
                      meta=run.meta)  # every process takes part in a save
            ckpt.close()
            run.extra_summary = best_summary(run.workdir, name, best["value"], best["step"])
        return {f"dev_{k}": v for k, v in scores.items()}

    return task_eval


def eval_command(workdir: str, split: str, predictions: str | None) -> dict:
    """Re-score `split` of a fine-tuning run with its best checkpoint (else its latest);
    print the metrics as one JSON line; write one prediction a line when asked."""
    from scaling.checkpoint.load import load_run
    from scaling.families import objective_of

    run = load_run(workdir, check=_is_finetuning_run, prefer=BEST_DIR)  # else the latest
    config, mesh, params, step, where = run.config, run.mesh, run.params, run.step, run.directory
    objective = objective_of(config)
    data = objective.load_data(config)
    if split not in data.task.splits:
        raise UserError(f"--split {split}: the task {config.finetune.task} has no {split} "
                        f"file (it has {', '.join(data.task.splits)})")
    say(f"scoring step {step} of {where}")
    metrics = TaskMetrics(config, mesh, run.shardings, objective.task_logits, data, split)
    (scores,) = metrics(params)
    result = {"task": config.finetune.task, "split": split, "checkpoint": where, "step": step,
              "examples": len(metrics.outputs), **scores}
    if predictions:
        write_predictions(predictions, decide(config.finetune.task_type, metrics.outputs),
                          config.finetune.task_type)
    print(json.dumps(result))
    return result


def _is_finetuning_run(config, workdir: str) -> None:
    """What `--tasks finetune` refuses (load_run's `check`): a run without a task head."""
    from scaling.families import objective_of

    objective = objective_of(config)
    if objective.task_logits is None:
        raise UserError(f"--tasks finetune: {workdir} is not a fine-tuning run (objective "
                        f"{objective.name}); run `scaling finetune` first")


def write_predictions(path: str, pred: np.ndarray, task_type: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for p in pred:
            f.write(f"{float(p):.6g}\n" if task_type == "regression" else f"{int(p)}\n")
