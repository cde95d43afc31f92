"""The README's main command (gpt-tiny, 8 simulated devices, 600 steps) in two checkouts,
A B A B in one process tree: wall time, median logged tokens/s and the validation losses.

    git archive f5233f2 | (mkdir -p /tmp/old && tar -x -C /tmp/old)
    python benchmarks/ab_train.py --a /tmp/old --b $PWD --rounds 2

Each checkout first runs 2 steps (building its data cache if it has none); every timed run
starts from an empty run directory. Each runs from its own directory, so that `python -m`
imports that checkout's package.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def train(root: str, workdir: str, extra: list[str]) -> dict:
    shutil.rmtree(workdir, ignore_errors=True)
    cmd = [sys.executable, "-m", "scaling.cli", "--host-devices", "8", "train", "--config",
           "gpt-tiny", "--workdir", workdir, *extra]
    env = dict(os.environ, PYTHONPATH=root, JAX_PLATFORMS="cpu")
    t = time.perf_counter()
    out = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if out.returncode:
        raise SystemExit(f"{root}: exit {out.returncode}\n{out.stderr[-3000:]}")
    with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    speeds = [r["tokens_per_sec"] for r in rows if "tokens_per_sec" in r][1:]  # not compile
    return {"wall": wall, "tokens_per_sec": statistics.median(speeds) if speeds else 0.0,
            "eval": [round(r["eval_loss"], 4) for r in rows if "eval_loss" in r]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True, help="checkout A (e.g. the old code)")
    p.add_argument("--b", required=True, help="checkout B (e.g. this worktree)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    work = tempfile.mkdtemp()
    for name, root in (("A", args.a), ("B", args.b)):
        train(root, os.path.join(work, name), ["--set", "train.steps=2"])
    ratios = []
    for r in range(args.rounds):
        got = {name: train(root, os.path.join(work, name), [])
               for name, root in (("A", args.a), ("B", args.b))}
        for name, g in got.items():
            print(f"round {r + 1} {name}: wall {g['wall']:.1f} s, median logged "
                  f"{g['tokens_per_sec']:,.0f} tokens/s, eval losses {g['eval']}", flush=True)
        ratios.append(got["B"]["tokens_per_sec"] / got["A"]["tokens_per_sec"])
        print(f"== round {r + 1}: B/A {ratios[-1]:.3f}", flush=True)
    print(f"median B/A over {args.rounds} rounds: {statistics.median(ratios):.3f}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
