"""The `scaling` command. This file only parses flags and dispatches; work lives elsewhere.

Bad input of any kind ends with one line `scaling: error: ...` and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from scaling.errors import UserError

MAX_HOST_DEVICES = 1024


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the whole usage)
        raise UserError(f"{self.prog}: {message} (see --help)")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="preset name, e.g. gpt-tiny, gpt2-small")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=100 (repeatable)")


def _load_config(args):
    from scaling.config import apply_overrides
    from scaling.presets import get_preset

    config = apply_overrides(get_preset(args.config), args.set)  # no JAX imported yet
    if getattr(args, "data", None):
        config = apply_overrides(config, [f"data.source={args.data}"])
    from scaling.validate import validate  # the choice tables live in the model modules

    return validate(_absolute_paths(config))


def _absolute_paths(config):
    """Paths given relative to the current directory, made absolute, so that config.json
    means the same from anywhere (a resume or `generate` started elsewhere)."""
    import dataclasses

    d = config.data
    kind, sep, arg = d.source.partition(":")
    source = d.source
    if sep and kind in ("text", "jsonl", "tsv") and arg:
        source = f"{kind}:{os.path.abspath(os.path.expanduser(arg))}"

    def path(p):
        return os.path.abspath(os.path.expanduser(p)) if p else p

    tokenizer = d.tokenizer if d.tokenizer in ("sentencepiece", "byte") else path(d.tokenizer)
    data = dataclasses.replace(d, source=source, tokenizer=tokenizer,
                               cache_dir=path(d.cache_dir), tfds_data_dir=path(d.tfds_data_dir))
    return dataclasses.replace(config, data=data)


def _host_devices(n: int | None) -> None:
    """Simulate n CPU devices; must run before JAX initializes its backends."""
    if n is None:
        return
    if n < 1:
        raise UserError(f"--host-devices {n}: expected a positive number of devices")
    if n > MAX_HOST_DEVICES:
        raise UserError(f"--host-devices {n}: at most {MAX_HOST_DEVICES} simulated CPU devices "
                        f"(each costs memory and compile time); to check a pod-size layout "
                        f"use `scaling bench compile --topology`")
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def cmd_train(args) -> int:
    config = _load_config(args)  # bad flags fail before the heavy imports
    if args.stop_at is not None and args.stop_at < 1:
        raise UserError(f"--stop_at {args.stop_at}: expected a step >= 1")
    from scaling.distributed import initialize_from_env
    from scaling.train.loop import train

    initialize_from_env()
    workdir = args.workdir or os.path.join("runs", config.name)
    init_from = os.path.abspath(args.init_from) if args.init_from else None
    summary = train(config, workdir, progress=not args.quiet, init_from=init_from,
                    stop_at=args.stop_at)
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


def cmd_params(args) -> int:
    config = _load_config(args)
    from scaling.params import count_params

    counts = count_params(config)
    if args.json:
        print(json.dumps({"preset": config.name, **counts}))
    else:
        print(f"{config.name}: {counts['total']:,} parameters "
              f"({counts['non_embedding']:,} non-embedding)")
    return 0


def cmd_bench(args) -> int:
    config = _load_config(args)  # bad flags fail before the heavy imports
    from scaling import bench

    if args.what == "train":
        return bench.bench_train(config, steps=args.steps, warmup=args.warmup)
    if args.what == "data":
        if args.steps < 1:
            raise UserError(f"--steps {args.steps}: expected at least one step")
        return bench.bench_data(config, steps=args.steps)
    if args.what == "compile":
        from scaling.aot import bench_compile

        return bench_compile(config, args.topology)
    if args.what == "torch":
        from scaling.bench_torch import bench_torch

        return bench_torch(config, steps=args.steps, rounds=args.rounds, warmup=args.warmup)
    raise UserError(f"unknown benchmark {args.what!r}")


def cmd_generate(args) -> int:
    from scaling.eval.generate import generate_text

    if not args.temperature >= 0 or not math.isfinite(args.temperature):
        raise UserError(f"--temperature {args.temperature}: expected a finite value >= 0 "
                        f"(0 = greedy)")
    try:
        args.prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("--prompt is not valid UTF-8 text") from None
    text = generate_text(args.workdir, args.prompt, args.max_new_tokens, args.temperature,
                         args.top_k, args.seed)
    print(args.prompt + text)
    return 0


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--shots {text!r}: expected integers separated by commas") from None


def cmd_eval(args) -> int:
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise UserError("--tasks: name at least one task (next_line, jsonl:PATH, bleu, "
                        "bleu:PATH.tsv)")
    if args.limit < 0 or args.beam < 1 or not args.alpha >= 0:
        raise UserError("--limit must be >= 0, --beam >= 1 and --alpha >= 0")
    translation = [t for t in tasks if t == "bleu" or t.startswith("bleu:")]
    others = [t for t in tasks if t not in translation]
    if translation:
        from scaling.eval.bleu import bleu_command

        bleu_command(args.workdir, translation, args.beam, args.alpha, args.limit, args.split)
    if others:
        from scaling.eval.harness import eval_command

        eval_command(args.workdir, others, _int_list(args.shots), args.limit, args.seed)
    return 0


def cmd_translate(args) -> int:
    from scaling.eval.translate import translate_command

    return translate_command(args.workdir, args.input, args.beam, args.alpha,
                             args.max_extra_len, args.batch)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--host-devices", type=int, default=None, metavar="N",
                        help="simulate N CPU devices (sets XLA_FLAGS before JAX starts)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train a preset (resumes from --workdir)")
    _config_args(p)
    p.add_argument("--workdir", default=None, help="run directory (default runs/PRESET)")
    p.add_argument("--data", default=None, help="data spec: embedded, tfds:NAME, text:GLOB, ...")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--init_from", default=None, metavar="DIR",
                   help="start a new run from another run directory's latest parameters "
                        "(fresh optimizer, step 0); ignored when --workdir has checkpoints")
    p.add_argument("--stop_at", type=int, default=None, metavar="STEP",
                   help="save and exit after STEP steps (the schedule still spans "
                        "train.steps); rerun to continue")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("params", help="total and non-embedding parameter counts")
    _config_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_params)

    p = sub.add_parser("eval", help="zero- and few-shot multiple-choice evaluation of a run")
    p.add_argument("--workdir", required=True, help="run directory written by scaling train")
    p.add_argument("--tasks", required=True,
                   help="comma-separated: next_line, jsonl:PATH, bleu (the test split of a "
                        "translation run), bleu:PATH.tsv")
    p.add_argument("--shots", default="0", help="comma-separated demonstration counts, e.g. 0,1,8")
    p.add_argument("--limit", type=int, default=0, help="score at most N examples per task")
    p.add_argument("--seed", type=int, default=0, help="task construction and demo sampling")
    p.add_argument("--beam", type=int, default=4, help="bleu: beam size (1 = greedy)")
    p.add_argument("--alpha", type=float, default=0.6, help="bleu: GNMT length penalty")
    p.add_argument("--split", default="test", help="bleu: the corpus split to score")
    p.set_defaults(fn=cmd_eval)

    p = sub.add_parser("translate", help="translate one source sentence a line (encdec runs)")
    p.add_argument("--workdir", required=True, help="run directory of an encdec run")
    p.add_argument("--input", default="-", help="file of sources, one a line; - = stdin")
    p.add_argument("--beam", type=int, default=4, help="beam size; 1 = greedy")
    p.add_argument("--alpha", type=float, default=0.6,
                   help="length penalty ((5 + |Y|) / 6)^alpha (GNMT; Vaswani et al. §6.1)")
    p.add_argument("--max-extra-len", type=int, default=50,
                   help="stop a translation after its source length + this many tokens")
    p.add_argument("--batch", type=int, default=64, help="sources decoded together")
    p.set_defaults(fn=cmd_translate)

    p = sub.add_parser("generate", help="continue a prompt with a trained run's model")
    p.add_argument("--workdir", required=True, help="run directory written by scaling train")
    p.add_argument("--prompt", required=True, help="text to continue")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=40, help="sample among the K likeliest; 0 = all")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser("bench", help="benchmarks (never run in CI)")
    p.add_argument("what", choices=["train", "data", "compile", "torch"],
                   help="train step speed, input pipeline speed, ahead-of-time TPU compile, "
                        "or our train step against a PyTorch reference (needs torch)")
    _config_args(p)
    p.add_argument("--data", default=None, help="data spec (bench data)")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps after compilation")
    p.add_argument("--rounds", type=int, default=3,
                   help="bench torch: interleaved rounds (ours, torch) of --steps steps each")
    p.add_argument("--topology", default=None,
                   help="bench compile: TPU topology such as v5p:8x8x8 (needs jax[tpu]); "
                        "default: this host's devices")
    p.set_defaults(fn=cmd_bench)

    _add_laws_commands(sub)
    return parser


def _add_laws_commands(sub) -> None:
    from scaling.laws.commands import (
        add_fit_arguments,
        add_sweep_arguments,
        fit_command,
        sweep_command,
    )

    p = sub.add_parser("sweep", help="run a scaling sweep (resumable; skips finished runs)")
    add_sweep_arguments(p)
    p.set_defaults(fn=sweep_command)
    p = sub.add_parser("fit", help="fit scaling laws to a results table; plots and report")
    add_fit_arguments(p)
    p.set_defaults(fn=fit_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `scaling` console script."""
    try:
        args = build_parser().parse_args(argv)
        _host_devices(args.host_devices)
        return int(args.fn(args) or 0)
    except UserError as e:
        print(f"scaling: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only or missing path, a directory for a file
        where = f"{e.filename}: " if e.filename else ""
        print(f"scaling: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except UnicodeError as e:
        print(f"scaling: error: text that is not valid UTF-8 ({e})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scaling: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
