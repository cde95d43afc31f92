"""`scaling eval --workdir RUN --tasks NAMES | --harness TASKS`: zero- and few-shot
multiple-choice evaluation, BLEU of a translation run, a fine-tuning run's task metrics,
or lm-evaluation-harness tasks."""

from __future__ import annotations

import argparse
import os

from scaling.commands.common import decoding_bounds, int_list
from scaling.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling eval`."""
    p.add_argument("--workdir", required=True, help="run directory written by scaling train")
    p.add_argument("--tasks", default=None,
                   help="comma-separated: next_line, jsonl:PATH, yaml:PATH, a built-in task "
                        "(2D+ .. 5D-, 2Dx, 1DC, CL, A1, A2, RI, RW, copy, kv_recall), bleu "
                        "(the test split of a translation run), bleu:PATH.tsv, finetune (a "
                        "fine-tuning run's task)")
    p.add_argument("--shots", default="0",
                   help="comma-separated demonstration counts, e.g. 0,1,8,max")
    p.add_argument("--limit", type=int, default=0, help="score at most N examples per task")
    p.add_argument("--seed", type=int, default=0, help="task construction and demo sampling")
    p.add_argument("--beam", type=int, default=4, help="bleu: beam size (1 = greedy)")
    p.add_argument("--alpha", type=float, default=0.6, help="bleu: GNMT length penalty")
    p.add_argument("--split", default=None,
                   help="bleu: the corpus split to score (default test); finetune: "
                        "validation (default) or test")
    p.add_argument("--predictions", default=None, metavar="FILE",
                   help="finetune: write one prediction a line (class id, or a float for "
                        "regression), in the task file's order")
    p.add_argument("--show-prompt", action="store_true",
                   help="print the exact prompt of each task's first example")
    p.add_argument("--log-samples", action="store_true",
                   help="per-example prompts and scores in the results JSON")
    p.add_argument("--output", default=None, metavar="FILE", help="write the results as JSON")
    p.add_argument("--harness", default=None, metavar="TASK[,TASK...]",
                   help="run lm-evaluation-harness tasks on the run (pip install -e .[lm-eval])")
    p.add_argument("--harness-include", default=None, metavar="DIR",
                   help="lm-eval YAML task files (its --include_path)")


def run(args) -> int:
    """Check the flags, then hand each kind of task to its evaluator."""
    decoding_bounds(args)
    if args.harness_include and not os.path.isdir(args.harness_include):
        what = "is a file" if os.path.exists(args.harness_include) else "does not exist"
        raise UserError(f"--harness-include {args.harness_include} {what}; give the directory "
                        f"holding the task YAML files")
    from scaling.eval import registry

    if args.harness:
        registry.get("lm_eval").command(args.workdir, [args.harness], args, int_list(args.shots))
        return 0
    if not args.tasks:
        raise UserError("--tasks or --harness: name at least one task")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise UserError("--tasks: name at least one task (next_line, jsonl:PATH, bleu, "
                        "bleu:PATH.tsv, finetune)")
    if args.limit < 0 or args.beam < 1 or not args.alpha >= 0:
        raise UserError("--limit must be >= 0, --beam >= 1 and --alpha >= 0")
    registry.evaluate(args.workdir, tasks, args, int_list(args.shots))
    return 0
