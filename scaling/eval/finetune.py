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
    from scaling.eval.checkpoint_io import inference_mesh, read_config
    from scaling.families import objective_of

    config = read_config(workdir)
    objective = objective_of(config)
    if objective.task_logits is None:
        raise UserError(f"--tasks finetune: {workdir} is not a fine-tuning run (objective "
                        f"{objective.name}); run `scaling finetune` first")
    config, mesh = inference_mesh(config)
    data = objective.load_data(config)
    if split not in data.task.splits:
        raise UserError(f"--split {split}: the task {config.finetune.task} has no {split} "
                        f"file (it has {', '.join(data.task.splits)})")
    params, shardings, step, where = _restore(workdir, config, mesh)
    fn = predict_fn(config, mesh, shardings, objective.task_logits)
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


def write_predictions(path: str, pred: np.ndarray, task_type: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for p in pred:
            f.write(f"{float(p):.6g}\n" if task_type == "regression" else f"{int(p)}\n")


def _restore(workdir: str, config, mesh):
    """(params, their shardings, step, directory) of the best checkpoint, else the latest;
    orbax's warnings about the items left unread are held back meanwhile (and only then:
    the level is process-wide)."""
    import logging

    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        return _restore_best(workdir, config, mesh)
    finally:
        absl.setLevel(level)


def _restore_best(workdir: str, config, mesh):
    from scaling import storage
    from scaling.checkpoint import Checkpoints, checkpoint_dir
    from scaling.train.optimizer import make_optimizer
    from scaling.train.state import sharded_abstract_state

    best = storage.join(storage.absolute(workdir), BEST_DIR)
    for directory in (best, checkpoint_dir(workdir)):
        if not storage.path(directory).is_dir():
            continue
        ckpt = Checkpoints(directory, read_only=True)
        step = ckpt.latest_step()
        if step is None:
            ckpt.manager.close()
            continue
        tx = make_optimizer(config.optim, config.train.steps)
        target, shardings = sharded_abstract_state(config, tx, mesh)
        params = ckpt.restore_params(step, target.params)
        ckpt.manager.close()
        say(f"scoring step {step} of {directory}")
        return params, shardings.params, step, directory
    raise UserError(f"{workdir} has no committed checkpoint yet")
