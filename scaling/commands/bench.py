"""`scaling bench train|data|compile|eval|torch|prepare --config PRESET`: benchmarks, one
module each under scaling/bench/ (never run in CI)."""

from __future__ import annotations

import argparse

from scaling.commands.common import config_args, load_config
from scaling.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling bench` (each benchmark reads the ones it names)."""
    p.add_argument("what", choices=["train", "data", "compile", "eval", "torch", "prepare"],
                   help="train step speed, input pipeline speed, ahead-of-time TPU compile, "
                        "few-shot scoring and generation speed, our train step against a "
                        "PyTorch reference (needs torch), or token-store build throughput "
                        "and memory (scaling prepare)")
    config_args(p)
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


def run(args) -> int:
    """Load the config, then run the benchmark `args.what` names."""
    config = load_config(args)  # bad flags fail before the heavy imports
    if args.what == "prepare":  # no JAX: `scaling prepare` child processes
        from scaling.bench.prepare import bench_prepare

        return bench_prepare(config, args.config, args.set, given=args.data is not None,
                             mb=args.mb, rounds=2 if args.rounds is None else args.rounds,
                             workers=args.workers, output=args.output)
    from scaling.gpu_topology import is_gpu_topology, use_cpu_host
    from scaling.rng import set_tpu_flags

    if args.what == "compile" and is_gpu_topology(args.topology):
        use_cpu_host()  # compile-only GPUs: the CUDA plugin would fail without a driver
    set_tpu_flags(config.train)  # before JAX initializes (train.dropout_rng=rbg on TPU)
    if args.what == "train":
        from scaling.bench.train import bench_train

        return bench_train(config, steps=args.steps, warmup=args.warmup)
    if args.what == "data":
        if args.steps < 1:
            raise UserError(f"--steps {args.steps}: expected at least one step")
        from scaling.bench.data import bench_data

        return bench_data(config, steps=args.steps)
    if args.what == "eval":
        from scaling.bench.eval import bench_eval

        return bench_eval(config)
    if args.what == "compile":
        from scaling.bench.compile import bench_compile

        return bench_compile(config, args.topology, args.slices)
    if args.what == "torch":
        from scaling.bench.torch_reference import bench_torch

        rounds = 3 if args.rounds is None else args.rounds
        return bench_torch(config, steps=args.steps, rounds=rounds, warmup=args.warmup,
                           torch_process=args.torch_process)
    raise UserError(f"unknown benchmark {args.what!r}")
