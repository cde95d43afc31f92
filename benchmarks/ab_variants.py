"""Interleaved A B A B timing of train-step variants of one preset, in one process.

    PYTHONPATH=$PWD python benchmarks/ab_variants.py --config gpt-tiny --set ... \\
        --variant base: --variant unroll:model.scan_unroll=4 --rounds 3 --steps 3

Each variant is `name:override,override,...` on top of the common --set overrides. Prints
tokens/s per round and the median ratio of each variant to the first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--variant", action="append", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3)
    args = p.parse_args(argv)
    from scaling.bench.train import train_runner
    from scaling.config import apply_overrides
    from scaling.presets import get_preset

    base = apply_overrides(get_preset(args.config), args.set)
    runners = {}
    for v in args.variant:
        name, _, sets = v.partition(":")
        config = apply_overrides(base, [s for s in sets.split(",") if s])
        runners[name] = train_runner(config, warmup=1)
        print(f"{name}: compile {runners[name]['compile_s']:.1f} s", flush=True)
    tokens = base.train.global_batch * base.seq_len * args.steps
    tps = {name: [] for name in runners}
    for r in range(args.rounds):
        for name, runner in runners.items():
            time.sleep(0.2)
            tps[name].append(tokens / runner["run"](args.steps))
        print(f"round {r + 1}: " + ", ".join(f"{n} {t[-1]:,.0f}" for n, t in tps.items()),
              flush=True)
    first = next(iter(tps.values()))
    for name, t in tps.items():
        ratio = statistics.median(a / b for a, b in zip(t, first, strict=True))
        print(f"{name}: median {statistics.median(t):,.0f} tokens/s, ratio to first "
              f"{ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
