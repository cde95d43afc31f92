"""`scaling eval --workdir FT_RUN --tasks finetune [--split test] [--predictions FILE]`:
re-score a fine-tuning run's dev (or test) split with its best checkpoint (else its latest),
print the metrics as one JSON line, and write one prediction a line in the file's order."""

from __future__ import annotations

import json

import numpy as np

from scaling.errors import UserError
from scaling.train.report import say
from scaling.train.task_eval import BEST_DIR, decide, predict, predict_fn, score


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
    fn = predict_fn(config, mesh, run.shardings, objective.task_logits)
    outputs = predict(fn, params, data, split, mesh)
    labeled = all(e.label is not None for e in data.task.splits[split])
    result = {"task": config.finetune.task, "split": split, "checkpoint": where, "step": step,
              "examples": len(outputs)}
    if labeled:
        result.update(score(data.task, outputs, split))
    if predictions:
        write_predictions(predictions, decide(config.finetune.task_type, outputs),
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
