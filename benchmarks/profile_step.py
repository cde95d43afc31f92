"""Per-op time of our train step on CPU from a jax.profiler (perfetto) trace.

    PYTHONPATH=$PWD python benchmarks/profile_step.py --config gpt-tiny --set model.d_model=256 ...

Runs the real compiled train step (scaling/train/step.py) a few times under the profiler and
prints the ops (XLA fusions/thunks) that took the most total time.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import sys
import tempfile


def describe(hlo: str) -> dict:
    """instruction name -> 'shape op_name' from the optimized HLO text."""
    import re

    out = {}
    for line in hlo.splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.-]+) = (\S+) ", line)
        if m:
            op = re.search(r'op_name="([^"]+)"', line)
            kind = re.search(r"= \S+ ([\w-]+)\(", line)
            out[m.group(1)] = (f"{m.group(2)} {kind.group(1) if kind else ''} "
                               f"{op.group(1)[-90:] if op else ''}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--config", required=True)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    import jax

    from scaling.bench.train import train_runner
    from scaling.config import apply_overrides
    from scaling.presets import get_preset

    config = apply_overrides(get_preset(args.config), args.set)
    runner = train_runner(config, warmup=1)
    out = tempfile.mkdtemp()
    with jax.profiler.trace(out, create_perfetto_trace=True):
        runner["run"](args.steps)
    path = glob.glob(os.path.join(out, "**", "*.trace.json.gz"), recursive=True)[0]
    events = json.load(gzip.open(path))["traceEvents"]
    total = collections.Counter()
    count = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            total[e["name"]] += e["dur"]
            count[e["name"]] += 1
    described = describe(runner["hlo"]())
    print(f"step {runner['run'](args.steps) / args.steps * 1e3:.0f} ms unprofiled")
    for name, us in total.most_common(args.top):
        if name.startswith(("$", "ThunkExecutor", "Slinky")):
            continue
        print(f"{us / args.steps / 1e3:8.1f} ms x{count[name] // args.steps:3d} {name:28s} "
              f"{described.get(name, '')[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
