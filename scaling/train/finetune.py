"""The config of a `scaling finetune` run (the command: scaling/commands/finetune.py).

The run's config is the backbone's (its config.json, or --config PRESET whose shapes must
match it), with the family's fine-tuning objective (Family.finetune) and its published
recipe (scaling/families/task_head.py), then the user's --set overrides. From the task
files: the task type, classes, choices; train.steps = ceil(finetune.epochs · examples /
global_batch) and optim.warmup_steps = the recipe's fraction of it, unless set; an
evaluation (with the task metrics on the whole dev split) and a checkpoint every epoch,
unless set. Training is `scaling.train.loop.train`: the same loop, sharding, checkpoints
and exact resume as pretraining; the run directory is locked as for `train`. The dev-split
evaluation (task metrics, the best checkpoint) is the command's to pass in
(scaling/eval/finetune.py, chosen from the evaluator registry).
"""

from __future__ import annotations

import json
import math

from scaling import storage
from scaling.config import apply_overrides, from_dict
from scaling.errors import UserError


def backbone_config(init_from: str):
    """The backbone run's config.json as a Config (no JAX); UserError when it is not a run."""
    path = storage.join(init_from, "config.json")
    if not storage.path(path).is_file():
        raise UserError(f"--init_from {init_from}: not a run directory (no config.json); "
                        f"pretrain one with `scaling train --workdir {init_from}`")
    try:
        return from_dict(json.loads(storage.read_text(path)), where=path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot read the backbone's config ({e})") from None


SHAPE_FIELDS = ("family", "vocab_size", "n_layers", "d_model", "n_heads", "d_ff", "max_len")


def _check_preset_matches(preset: str, base, backbone, init_from: str) -> None:
    """--config PRESET must describe the backbone's model: another family or shape is one
    line now, not a mismatch found when the parameters are loaded."""
    bad = [f"model.{k}: {preset} has {getattr(base.model, k)}, the backbone "
           f"{getattr(backbone.model, k)}" for k in SHAPE_FIELDS
           if getattr(base.model, k) != getattr(backbone.model, k)]
    if bad:
        raise UserError(f"--config {preset} does not describe the backbone {init_from} "
                        f"({'; '.join(bad[:3])}); omit --config to take the backbone's")


def _keys(overrides: list[str]) -> set[str]:
    return {o.split("=", 1)[0].strip() for o in overrides}


def _get(config, key: str):
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def finetune_config(init_from: str, task: str, preset: str | None, overrides: list[str]):
    """(the fine-tuning Config, the Task read from its files)."""
    from scaling.data.sources.task_files import load_task
    from scaling.families import family_names, family_of, get_family, get_objective
    from scaling.families.task_head import RECIPES, WARMUP_FRACTION

    backbone = backbone_config(init_from)
    base = backbone
    if preset:
        from scaling.presets import get_preset

        base = get_preset(preset)
        _check_preset_matches(preset, base, backbone, init_from)
    family = family_of(base.model)
    given = _keys(overrides)
    objective = next((o.split("=", 1)[1].strip() for o in overrides
                      if o.split("=", 1)[0].strip() == "train.objective"), family.finetune)
    if not family.finetune:
        raise UserError(f"--init_from {init_from}: a {family.name} run; fine-tuning takes a "
                        f"bert or gpt family backbone")
    recipe = RECIPES.get(objective)
    if recipe is None or objective not in family.objectives:
        fits = [f for f in family_names() if objective in get_family(f).objectives]
        raise UserError(f"--init_from {init_from}: a {family.name} run, but "
                        f"train.objective={objective} fine-tunes {' or '.join(fits) or 'none'}"
                        f" family backbones; use a matching --init_from or drop the setting")
    config = apply_overrides(base, [f"{k}={v}" for k, v in recipe.items()]
                             + [f"train.objective={objective}", f"finetune.task={task}",
                                f"finetune.init_from={storage.absolute(init_from)}"])
    from scaling.validate import OPTIONS

    # the backbone's pretraining switches (data.nsp) do not apply to the task objective
    off = [f"{k}=false" for k in OPTIONS
           if k not in get_objective(objective).options and _get(config, k)]
    config = apply_overrides(config, off + overrides)
    t = load_task(config.finetune, config.data)
    n = len(t.splits["train"])
    gb = config.train.global_batch
    per_epoch = max(1, math.ceil(n / gb))
    steps = config.train.steps if "train.steps" in given else max(
        1, math.ceil(config.finetune.epochs * n / gb))
    derived = [f"finetune.task_type={t.task_type}", f"finetune.num_labels={t.num_labels}",
               f"finetune.num_choices={t.num_choices}", f"train.steps={steps}"]
    if "optim.warmup_steps" not in given:
        derived.append(f"optim.warmup_steps={round(WARMUP_FRACTION[objective] * steps)}")
    for key in ("train.eval_every", "train.checkpoint_every"):
        if key not in given:
            derived.append(f"{key}={min(per_epoch, steps)}")
    if "train.seq_len" not in given and not config.train.seq_len:
        derived.append(f"train.seq_len={min(config.model.max_len, 128)}")
    return apply_overrides(config, derived), t
