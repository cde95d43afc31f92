"""`scaling finetune --init_from RUN --task SPEC --workdir DIR`: fine-tune a pretrained run
on a labelled task (BERT heads, GPT-1 with the auxiliary LM loss). The config is built by
scaling/train/finetune.py; training is the pretraining loop."""

from __future__ import annotations

import argparse
import os

from scaling.commands.common import absolute_paths, stop_at


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling finetune`."""
    p.add_argument("--init_from", "--init-from", required=True, metavar="RUN",
                   help="the pretrained run directory (bert or gpt family)")
    p.add_argument("--task", required=True, metavar="SPEC",
                   help="DIR with train/validation[/test].{jsonl,csv,tsv}, or tfds:glue/CONFIG")
    p.add_argument("--workdir", required=True, help="the fine-tuning run directory")
    p.add_argument("--config", default=None,
                   help="preset whose model must match the backbone (default: the backbone's "
                        "own config)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set finetune.lm_weight=0 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--stop_at", "--stop-at", type=int, default=None, metavar="STEP",
                   help="save and exit after STEP steps; rerun to continue")
    p.add_argument("--scratch", action="store_true",
                   help="baseline: the same model and task, its backbone initialized fresh "
                        "(--init_from still gives the config and tokenizer)")


def run(args) -> int:
    """Fine-tune (or resume); print the best dev metric and the run directory."""
    stop_at(args.stop_at)
    from scaling import storage
    from scaling.config import ConfigError
    from scaling.train.finetune import finetune_config

    task = args.task if args.task.startswith("tfds:") else os.path.abspath(args.task)
    config, task_data = finetune_config(args.init_from, task, args.config, args.set)
    from scaling.eval.registry import training_evaluations
    from scaling.validate import validate

    try:
        config = validate(absolute_paths(config))
        evaluations = training_evaluations(config)  # the task's dev metrics; checks eval_tasks
    except ConfigError as e:
        raise ConfigError(f"the fine-tuning config: {e}") from None
    from scaling.distributed import initialize_from_env
    from scaling.train.loop import train

    initialize_from_env()
    init_from = None if args.scratch else storage.absolute(args.init_from)
    summary = train(config, args.workdir, progress=not args.quiet, init_from=init_from,
                    stop_at=args.stop_at, evaluations=evaluations, command="finetune")
    if summary["preempted"] or summary["end_step"] < summary["steps"]:
        print(f"stopped at step {summary['end_step']} of {summary['steps']}; checkpoint "
              f"saved, rerun the same command to resume")
    elif summary.get("best_value") is not None:
        print(f"{task_data.task_type} on {config.finetune.task}: best dev "
              f"{summary['best_metric']} {summary['best_value']:.4f} at step "
              f"{summary['best_step']} ({summary['best_checkpoint']})")
    print(f"run directory: {args.workdir}")
    return 0
