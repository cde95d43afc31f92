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
        command = self.prog.removeprefix("scaling").strip()  # main() prints "scaling: error:"
        raise UserError(f"{command + ': ' if command else ''}{message} (see --help)")


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="preset name, e.g. gpt-tiny, gpt2-small")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=100 (repeatable)")


def _load_config(args):
    from scaling.config import apply_overrides
    from scaling.presets import get_preset

    config = apply_overrides(get_preset(args.config), args.set)  # no JAX imported yet
    if getattr(args, "data", None):  # --data sets the field; validate parses it once
        import dataclasses

        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, source=args.data))
    from scaling.validate import validate  # the choice tables live in the model modules

    return validate(_absolute_paths(config))


def _absolute_paths(config):
    """Paths given relative to the current directory, made absolute, so that config.json
    means the same from anywhere (a resume or `generate` started elsewhere)."""
    import dataclasses

    from scaling import storage
    from scaling.data.spec import absolute_source

    d = config.data
    source = absolute_source(d.source, storage.absolute)  # mix: parts included

    def path(p):  # a URI (gs://...) is kept as it is
        return storage.absolute(p) if p else p

    tokenizer = d.tokenizer if d.tokenizer in ("sentencepiece", "byte") else path(d.tokenizer)
    if d.tokenizer.startswith("hf:"):  # a HuggingFace tokenizer directory
        tokenizer = "hf:" + path(d.tokenizer[3:])
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
    from scaling.eval.in_training import fewshot_hook

    summary = train(config, workdir, progress=not args.quiet, init_from=init_from,
                    stop_at=args.stop_at, extra_hooks={"fewshot": fewshot_hook},
                    profile=profile)
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


def cmd_prepare(args) -> int:
    config = _load_config(args)  # bad flags fail before the heavy imports
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers {args.workers}: expected at least 1 worker process")
    d = config.data
    if d.spec.kind in ("store", "mix"):
        raise UserError(f"--data {d.source!r}: prepare builds a store from one source "
                        f"(embedded, text:, jsonl:, parquet:, tfds:); prepare each part of a "
                        f"mixture on its own")
    from scaling import storage
    from scaling.data.store.prepare import build, make_plan

    out = storage.absolute(args.out)
    plan = make_plan(d, config.model.vocab_size, d.vocab_size, sentences=d.nsp,
                     shard_mb=args.shard_mb)
    manifest = build(plan, out, workers=args.workers, runner=args.runner,
                     beam_options=tuple(args.beam_option), progress=not args.quiet)
    for split, s in manifest["splits"].items():
        print(f"{split}: {s['tokens']:,} tokens, {s['documents']:,} documents, "
              f"{len(s['shards'])} shard(s)")
    tok = manifest["tokenizer"]
    print(f"tokenizer: {tok['kind']}, {tok['vocab_size']:,} ids, sha256 {tok['hash'][:16]}...")
    print(f"token store: {out}  (train from it: scaling train --config {args.config} "
          f"--data store:{out})")
    return 0


def cmd_finetune(args) -> int:
    from scaling.train.finetune import cmd_finetune as run

    return run(args, _absolute_paths)


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
    if args.what == "prepare":  # no JAX: `scaling prepare` child processes
        from scaling.bench_prepare import bench_prepare

        return bench_prepare(config, args.config, args.set, given=args.data is not None,
                             mb=args.mb, rounds=2 if args.rounds is None else args.rounds,
                             workers=args.workers, output=args.output)
    from scaling.gpu_topology import is_gpu_topology, use_cpu_host
    from scaling.rng import set_tpu_flags

    if args.what == "compile" and is_gpu_topology(args.topology):
        use_cpu_host()  # compile-only GPUs: the CUDA plugin would fail without a driver
    set_tpu_flags(config.train)  # before JAX initializes (train.dropout_rng=rbg on TPU)
    from scaling import bench

    if args.what == "train":
        return bench.bench_train(config, steps=args.steps, warmup=args.warmup)
    if args.what == "data":
        if args.steps < 1:
            raise UserError(f"--steps {args.steps}: expected at least one step")
        return bench.bench_data(config, steps=args.steps)
    if args.what == "eval":
        from scaling.eval.bench import bench_eval

        return bench_eval(config)
    if args.what == "compile":
        from scaling.aot import bench_compile

        return bench_compile(config, args.topology, args.slices)
    if args.what == "torch":
        from scaling.bench_torch import bench_torch

        rounds = 3 if args.rounds is None else args.rounds
        return bench_torch(config, steps=args.steps, rounds=rounds, warmup=args.warmup,
                           torch_process=args.torch_process)
    raise UserError(f"unknown benchmark {args.what!r}")


def cmd_generate(args) -> int:
    from scaling.eval.generate import generate_text

    if not args.temperature >= 0 or not math.isfinite(args.temperature):
        raise UserError(f"--temperature {args.temperature}: expected a finite value >= 0 "
                        f"(0 = greedy)")
    if not 0 < args.top_p <= 1:
        raise UserError(f"--top-p {args.top_p}: expected a mass in (0, 1]")
    if (args.prompt is None) == (args.prompts is None):
        raise UserError("give exactly one of --prompt TEXT and --prompts FILE")
    from scaling.eval.encoding import parse_escapes

    _decoding_bounds(args)
    args.stop = [parse_escapes(s) for s in args.stop]  # --stop "\n": a newline
    if args.prompts is not None:
        from scaling.eval.generate import generate_file

        return generate_file(args.workdir, args.prompts, args.max_new_tokens, args.temperature,
                             args.top_k, args.top_p, args.stop, args.seed, args.batch)
    try:
        args.prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("--prompt is not valid UTF-8 text") from None
    text = generate_text(args.workdir, args.prompt, args.max_new_tokens, args.temperature,
                         args.top_k, args.seed, args.top_p, args.stop)
    print(args.prompt + text)
    return 0


def _int_list(text: str) -> list[int]:
    try:  # "max": as many demonstrations as fit (scaling.eval.prompts.MAX_SHOTS)
        shots = [-1 if x.strip() == "max" else int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--shots {text!r}: expected integers (or max) separated by "
                        f"commas") from None
    if any(n < 0 for n, x in zip(shots, text.split(","), strict=False) if x.strip() != "max"):
        raise UserError(f"--shots {text!r}: shot counts are >= 0 (write max for as many as "
                        f"fit)")
    return shots


def _bounded(flag: str, value, low, high) -> None:
    """One line unless low <= value <= high (a finite number); docs/reliability.md, Bounds."""
    if not (isinstance(value, int) or math.isfinite(value)) or not low <= value <= high:
        raise UserError(f"{flag} {value}: expected a value from {low} to {high:g}")


def _decoding_bounds(args) -> None:
    from scaling.bounds import MAX_BATCH, MAX_BEAM

    if getattr(args, "beam", None) is not None:
        _bounded("--beam", args.beam, 1, MAX_BEAM)
    if getattr(args, "alpha", None) is not None:
        _bounded("--alpha", args.alpha, 0, 10)  # GNMT's length penalty: 0.6-1 in practice
    if getattr(args, "batch", None) is not None:
        _bounded("--batch", args.batch, 1, MAX_BATCH)


def cmd_eval(args) -> int:
    _decoding_bounds(args)
    if args.harness_include and not os.path.isdir(args.harness_include):
        what = "is a file" if os.path.exists(args.harness_include) else "does not exist"
        raise UserError(f"--harness-include {args.harness_include} {what}; give the directory "
                        f"holding the task YAML files")
    if args.harness:
        from scaling.eval.lm_eval_adapter import harness_command

        shots = _int_list(args.shots)
        return harness_command(args.workdir, args.harness, args.harness_include,
                               shots[0] if shots else 0, args.limit, args.output)
    if not args.tasks:
        raise UserError("--tasks or --harness: name at least one task")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise UserError("--tasks: name at least one task (next_line, jsonl:PATH, bleu, "
                        "bleu:PATH.tsv, finetune)")
    if args.limit < 0 or args.beam < 1 or not args.alpha >= 0:
        raise UserError("--limit must be >= 0, --beam >= 1 and --alpha >= 0")
    translation = [t for t in tasks if t == "bleu" or t.startswith("bleu:")]
    others = [t for t in tasks if t not in translation and t != "finetune"]
    if "finetune" in tasks:  # a fine-tuning run's task: dev (or --split test) metrics
        from scaling.eval.finetune import eval_command

        eval_command(args.workdir, args.split or "validation", args.predictions)
    elif args.predictions:
        raise UserError("--predictions: only with --tasks finetune")
    if translation:
        from scaling.eval.bleu import bleu_command

        bleu_command(args.workdir, translation, args.beam, args.alpha, args.limit,
                     args.split or "test")
    if others:
        from scaling.eval.harness import eval_command

        eval_command(args.workdir, others, _int_list(args.shots), args.limit, args.seed,
                     args.show_prompt, args.log_samples, args.output)
    return 0


def cmd_translate(args) -> int:
    from scaling.eval.translate import translate_command

    _decoding_bounds(args)
    return translate_command(args.workdir, args.input, args.beam, args.alpha,
                             args.max_extra_len, args.batch)


def cmd_convert(args) -> int:
    if bool(args.from_hf) == bool(args.to_hf):
        raise UserError("convert: give exactly one of --from-hf DIR (import into --workdir) "
                        "or --to-hf DIR (export --workdir)")
    if args.from_hf:
        if args.step is not None:
            raise UserError("--step applies to --to-hf (which checkpoint to export)")
        from scaling.hf.from_hf import import_command

        return import_command(args.from_hf, args.workdir, args.config, args.set)
    if args.config or args.set:
        raise UserError("--config/--set apply to --from-hf; an export uses the run's config")
    from scaling.hf.to_hf import export_command

    return export_command(args.workdir, args.to_hf, args.step)


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
    p.add_argument("--init_from", "--init-from", default=None, metavar="DIR",
                   help="start a new run from another run directory's latest parameters "
                        "(fresh optimizer, step 0); ignored when --workdir has checkpoints")
    p.add_argument("--stop_at", "--stop-at", type=int, default=None, metavar="STEP",
                   help="save and exit after STEP steps (the schedule still spans "
                        "train.steps); rerun to continue")
    p.add_argument("--profile", default=None, metavar="START:STOP",
                   help="write a jax.profiler trace of steps START+1..STOP into "
                        "WORKDIR/profile (TensorBoard / XProf)")
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("prepare", help="tokenize a corpus once, on Apache Beam, into a token "
                                       "store that training reads (--data store:STORE)")
    _config_args(p)
    p.add_argument("--data", default=None,
                   help="the corpus: embedded, text:GLOB, jsonl:GLOB (.gz, .zst), "
                        "parquet:GLOB, tfds:NAME[/CONFIG]")
    p.add_argument("--out", required=True, metavar="STORE",
                   help="the store directory to write (a local path or gs://bucket/path)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (direct runner; default: the CPU count)")
    p.add_argument("--runner", default="direct", choices=["direct", "dataflow", "flink", "spark"],
                   help="Beam runner (dataflow/flink/spark take --beam-option settings)")
    p.add_argument("--beam-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a Beam pipeline option, e.g. --beam-option project=P (repeatable)")
    p.add_argument("--shard-mb", type=float, default=0.0, metavar="MB",
                   help="source MB a shard group holds (default: about 64 groups, 1-256 MB)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(fn=cmd_prepare)

    p = sub.add_parser("finetune", help="fine-tune a pretrained run on a labelled task "
                                        "(BERT heads, GPT-1 with the auxiliary LM loss)")
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
    p.set_defaults(fn=cmd_finetune)

    p = sub.add_parser("params", help="total and non-embedding parameter counts")
    _config_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(fn=cmd_params)

    p = sub.add_parser("eval", help="zero- and few-shot multiple-choice evaluation of a run")
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
    p.add_argument("--prompt", default=None, help="text to continue")
    p.add_argument("--prompts", default=None, metavar="FILE",
                   help="a file of prompts, one a line, generated in batches")
    p.add_argument("--top-p", type=float, default=1.0,
                   help="nucleus sampling: the smallest set of tokens with this mass; 1 = all")
    p.add_argument("--stop", action="append", default=[],
                   help="cut the text at this string; backslash escapes such as \\n are "
                        "read (repeatable)")
    p.add_argument("--batch", type=int, default=8, help="--prompts: prompts decoded together")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=40, help="sample among the K likeliest; 0 = all")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.set_defaults(fn=cmd_generate)

    p = sub.add_parser("convert", help="import a HuggingFace checkpoint as a run directory, "
                                       "or export a run to HuggingFace")
    p.add_argument("--from-hf", default=None, metavar="DIR",
                   help="HuggingFace model directory (config.json + safetensors) to import")
    p.add_argument("--to-hf", default=None, metavar="DIR",
                   help="write the run as a HuggingFace model directory (a new directory)")
    p.add_argument("--workdir", required=True, help="the run directory (new for --from-hf)")
    p.add_argument("--config", default=None,
                   help="--from-hf: a preset the checkpoint's shape must match (default: "
                        "inferred from config.json)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="--from-hf: override a setting of the new run, e.g. "
                        "model.scan_layers=false (repeatable)")
    p.add_argument("--step", type=int, default=None,
                   help="--to-hf: the checkpoint step to export (default: the latest)")
    p.set_defaults(fn=cmd_convert)

    p = sub.add_parser("bench", help="benchmarks (never run in CI)")
    p.add_argument("what", choices=["train", "data", "compile", "eval", "torch", "prepare"],
                   help="train step speed, input pipeline speed, ahead-of-time TPU compile, "
                        "few-shot scoring and generation speed, our train step against a "
                        "PyTorch reference (needs torch), or token-store build throughput "
                        "and memory (scaling prepare)")
    _config_args(p)
    p.add_argument("--data", default=None,
                   help="data spec (bench data; bench prepare: default a generated corpus)")
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps after compilation")
    p.add_argument("--rounds", type=int, default=None,
                   help="interleaved rounds: bench torch (ours, torch) of --steps steps each "
                        "(default 3); bench prepare (each worker count, both corpus sizes, "
                        "the bare tokenizer; default 2)")
    p.add_argument("--mb", type=float, default=300.0,
                   help="bench prepare: MB of generated corpus (also measured: a quarter)")
    p.add_argument("--workers", default="1,2", metavar="N,M",
                   help="bench prepare: worker counts to compare")
    p.add_argument("--output", default=None, metavar="FILE",
                   help="bench prepare: write the results as JSON")
    p.add_argument("--torch-process", choices=["separate", "same"], default="separate",
                   help="bench torch: the reference in a child process with glibc's default "
                        "allocator, as a plain PyTorch script runs (default), or in this "
                        "process under our CPU allocator settings")
    p.add_argument("--topology", default=None,
                   help="bench compile: TPU topology such as v5p:8x8x8 (needs jax[tpu]) or "
                        "GPUs as h100:1x1x8, SLICESxHOSTSxDEVICES (also h200, a100, b200; "
                        "needs scaling[gpu]); default: this host's devices")
    p.add_argument("--slices", type=int, default=1,
                   help="bench compile: number of --topology slices (multi-slice; set "
                        "mesh.replica to the same number)")
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
    from scaling.jax_platforms import choose

    choose()  # before JAX initializes: no plugin for absent hardware (it prints errors)
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
