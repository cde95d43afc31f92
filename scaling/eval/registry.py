"""Every evaluator, by name (big_vision's `evaluators/`): `scaling eval --tasks/--harness` and
the training commands choose from here; the training loop knows none of them.

An evaluator is a module with a class called with a run's parameters that returns metric
rows (`FewShot`, `Bleu`, `TaskMetrics`; lm-eval's `LM` adapter), and an `Entry` here that
builds it:

    Entry(name, tasks, takes, command, training, check)
      takes(item)                   does this evaluator score `--tasks` item `item`
      command(workdir, items, args, shots)
                                    `scaling eval`: restore the run, evaluate, print, append
                                    the rows to eval.jsonl (args: the command's options)
      training(config)              a train/hooks.py `Evaluation` for a run with this
                                    config, or None
      check(config)                 a ConfigError for a bad setting of it (train.eval_tasks),
                                    without importing anything heavy

Adding one: write `scaling/eval/<name>.py` (the class, its `command`, its `training`) and
add an `Entry` to `ENTRIES` below (or `register` it); `scaling eval --tasks` then takes its
items and every training command passes its evaluation to the loop. This module imports
nothing heavy: the evaluators are imported when used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scaling.errors import UserError


@dataclass(frozen=True)
class Entry:
    """One evaluator of the registry (see the module doc)."""

    name: str
    tasks: str  # the --tasks items it takes, as the help and errors name them
    takes: Callable[[str], bool] = lambda item: False
    command: Callable | None = None  # (workdir, items, args, shots) -> rows
    training: Callable | None = None  # (config) -> train.hooks.Evaluation | None
    check: Callable | None = None  # (config) -> None, or a ConfigError


def _few_shot_task(item: str) -> bool:
    from scaling.eval.task_names import TASKS

    return (item == "next_line" or item in TASKS or item.startswith(("jsonl:", "yaml:"))
            or item.endswith((".yaml", ".yml")))


def _finetune_command(workdir, items, args, shots):
    from scaling.eval.finetune import eval_command

    return [eval_command(workdir, args.split or "validation", args.predictions)]


def _finetune_training(config):
    from scaling.eval.finetune import in_training

    return in_training(config)


def _bleu_command(workdir, items, args, shots):
    from scaling.eval.bleu import bleu_command

    return bleu_command(workdir, items, args.beam, args.alpha, args.limit, args.split or "test")


def _bleu_training(config):
    from scaling.eval.bleu import in_training

    return in_training(config)


def _fewshot_command(workdir, items, args, shots):
    from scaling.eval.fewshot import eval_command

    return eval_command(workdir, items, shots, args.limit, args.seed,
                        args.show_prompt, args.log_samples, args.output)


def _fewshot_training(config):
    from scaling.eval.fewshot import in_training

    return in_training(config) if config.train.eval_tasks else None


def _fewshot_check(config):
    from scaling.eval.task_names import parse_eval_tasks

    parse_eval_tasks(config.train.eval_tasks)


def _lm_eval_command(workdir, items, args, shots):
    from scaling.eval.lm_eval_adapter import harness_command

    harness_command(workdir, ",".join(items), args.harness_include, shots[0] if shots else 0,
                    args.limit, args.output)
    return []


# In this order `scaling eval` runs the evaluators of its --tasks items, and the training
# loop their evaluations (its hooks).
ENTRIES = [
    Entry("bleu", "bleu (the test split of a translation run), bleu:PATH.tsv",
          lambda item: item == "bleu" or item.startswith("bleu:"), _bleu_command,
          _bleu_training),
    Entry("fewshot", "next_line, jsonl:PATH, yaml:PATH, a built-in task (2D+ .. 5D-, 2Dx, "
          "1DC, CL, A1, A2, RI, RW, copy, kv_recall)", _few_shot_task, _fewshot_command,
          _fewshot_training, _fewshot_check),
    Entry("finetune", "finetune (a fine-tuning run's task)", lambda item: item == "finetune",
          _finetune_command, _finetune_training),
    Entry("lm_eval", "lm-evaluation-harness tasks (--harness)", command=_lm_eval_command),
]


def register(entry: Entry) -> Entry:
    """Add an evaluator (a test, or a project's own module); its name must be new."""
    if any(e.name == entry.name for e in ENTRIES):
        raise ValueError(f"evaluator {entry.name!r} is registered twice")
    ENTRIES.append(entry)
    return entry


def names() -> list[str]:
    return [e.name for e in ENTRIES]


def get(name: str) -> Entry:
    """The evaluator called `name`; a UserError names the known ones."""
    for e in ENTRIES:
        if e.name == name:
            return e
    raise UserError(f"unknown evaluator {name!r}; evaluators: {', '.join(names())}")


def for_item(item: str) -> Entry:
    """The evaluator that scores `--tasks` item `item`; a UserError names what each takes."""
    for e in ENTRIES:
        if e.command is not None and e.takes(item):
            return e
    known = "; ".join(f"{e.name}: {e.tasks}" for e in ENTRIES if e.command is not None)
    raise UserError(f"unknown task {item!r}; --tasks takes ({known})")


def evaluate(workdir: str, items: list[str], args, shots: list[int]) -> list[dict]:
    """`scaling eval --tasks ITEMS`: each evaluator its items, in the registry's order;
    `args` holds the command's options (limit, seed, beam, alpha, split, predictions,
    show_prompt, log_samples, output), `shots` the --shots counts."""
    chosen: dict[str, list[str]] = {}
    for item in items:
        chosen.setdefault(for_item(item).name, []).append(item)
    if args.predictions and "finetune" not in chosen:
        raise UserError("--predictions: only with --tasks finetune")
    rows = []
    for e in ENTRIES:
        if e.name in chosen:
            rows += e.command(workdir, chosen[e.name], args, shots)
    return rows


def check(config) -> None:
    """Each evaluator's check of `config` (train.eval_tasks names): a ConfigError, before
    anything heavy is imported."""
    for e in ENTRIES:
        if e.check is not None:
            e.check(config)


def training_evaluations(config) -> list:
    """The evaluations a run with `config` passes to the training loop (train/hooks.py
    `Evaluation`), in the registry's order; `check` first, so commands call this before any
    device work."""
    check(config)
    return [ev for ev in (e.training(config) for e in ENTRIES if e.training is not None)
            if ev is not None]
