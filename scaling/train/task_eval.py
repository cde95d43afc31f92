"""Fine-tuning evaluation: predictions over a whole split in file order, task metrics, the
best checkpoint (`scaling eval --tasks finetune`: scaling/eval/finetune.py).

At each evaluation of a fine-tuning run the dev split is scored in full; `eval_<metric>`
rows go to metrics.jsonl, and when the task's dev metric (finetune.metric, default by task
type) improves the state is saved to `<workdir>/best/<step>` (one kept), which summary.json
names. A resumed run re-reads the best so far from metrics.jsonl.

Legend: B global batch, K head outputs.
"""

from __future__ import annotations

import jax
import numpy as np

from scaling import sharding, storage
from scaling.errors import UserError
from scaling.metrics import read_rows
from scaling.task_metrics import DEFAULT_METRIC, task_metrics

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


def task_eval_hook(run, writer):
    """The `task_eval` hook of a fine-tuning run (see module doc)."""
    from scaling.checkpoint.manager import Checkpoints
    from scaling.config import TrainConfig

    cfg = run.config
    fn = predict_fn(run.resolved, run.mesh, run.shardings.params, run.objective.task_logits)
    name = metric_name(cfg)
    key = f"dev_{name}"
    best = dict(zip(("value", "step"), _best_so_far(run.workdir, key), strict=True))
    run.extra_summary = best_summary(run.workdir, name, best["value"], best["step"])

    def task_eval(info) -> None:
        scores = score(run.data.task, predict(fn, run.state.params, run.data, "validation",
                                              run.mesh), "validation")
        if name not in scores:
            raise UserError(f"finetune.metric={name!r}: a {cfg.finetune.task_type} task "
                            f"reports {', '.join(scores)}")
        writer.write(info.step, {f"dev_{k}": v for k, v in scores.items()})
        if best["value"] is None or scores[name] > best["value"]:
            best.update(value=scores[name], step=info.step)
            ckpt = Checkpoints(storage.join(run.workdir, BEST_DIR), TrainConfig(keep_last=1))
            ckpt.save(info.step, run.state, data={"step": info.step}, config=cfg.to_dict(),
                      meta=run.meta)  # every process takes part in a save
            ckpt.close()
            run.extra_summary = best_summary(run.workdir, name, best["value"], best["step"])

    return task_eval
