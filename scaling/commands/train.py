"""`scaling train --config PRESET`: train a preset; rerun the same command to resume."""

from __future__ import annotations

import argparse
import os

from scaling.commands.common import config_args, load_config, stop_at


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling train`."""
    config_args(p)
    p.add_argument("--workdir", default=None, help="run directory (default runs/PRESET)")
    p.add_argument("--data", default=None, help="data spec: embedded, tfds:NAME, text:GLOB, ...")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--init_from", "--init-from", default=None, metavar="DIR",
                   help="start a new run from another run directory's latest parameters "
                        "(fresh optimizer, step 0); ignored when --workdir has checkpoints")
    p.add_argument("--stop_at", "--stop-at", type=int, default=None, metavar="STEP",
                   help="save and exit after STEP steps (the schedule still spans "
                        "train.steps); rerun to continue")
    p.add_argument("--profile", default=None, metavar="START:STOP",
                   help="write a jax.profiler trace of steps START+1..STOP into "
                        "WORKDIR/profile (TensorBoard / XProf)")


def run(args) -> int:
    """Train (or resume) the run; print the final validation loss and the run directory."""
    config = load_config(args)  # bad flags fail before the heavy imports
    stop_at(args.stop_at)
    from scaling.eval.registry import training_evaluations

    evaluations = training_evaluations(config)  # BLEU, few-shot tasks, dev metrics
    from scaling.train.profiling import parse_profile

    profile = parse_profile(args.profile)
    from scaling.distributed import initialize_from_env
    from scaling.rng import set_tpu_flags
    from scaling.train.loop import train

    set_tpu_flags(config.train)  # before JAX initializes (train.dropout_rng=rbg on TPU)
    initialize_from_env()
    workdir = args.workdir or os.path.join("runs", config.name)
    from scaling import storage

    init_from = storage.absolute(args.init_from) if args.init_from else None
    summary = train(config, workdir, progress=not args.quiet, init_from=init_from,
                    stop_at=args.stop_at, evaluations=evaluations, profile=profile)
    loss, ent = summary["final_eval_loss"], summary["unigram_entropy"]
    if summary["preempted"] or loss is None:
        print(f"stopped at step {summary['end_step']} of {summary['steps']}; checkpoint saved, "
              f"rerun the same command to resume")
    else:
        line = f"final validation loss {loss:.4f} nats/token"
        if ent:
            line += (f"; unigram entropy of the validation split under the same tokenizer "
                     f"{ent:.4f} nats/token (the loss is {loss / ent:.0%} of it)")
        print(line)
    print(f"run directory: {workdir}")
    return 0
