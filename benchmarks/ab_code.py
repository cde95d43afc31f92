"""Interleaved A B A B timing of two checkouts of this code base, in one process tree.

    python benchmarks/ab_code.py --a /tmp/old --b $PWD --rounds 3 -- \\
        --host-devices 8 bench train --config gpt-tiny

Runs `python -m scaling.cli ARGS` with PYTHONPATH=A, then B, `--rounds` times, parses the
figure of each run's output (--pattern; default its tokens/s) and prints both per round, the
ratio B/A per round and the median ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys


def figure(root: str, args: list[str], pattern: str) -> float:
    env = dict(os.environ, PYTHONPATH=root, JAX_PLATFORMS="cpu")
    # cwd=root: `python -m` puts the working directory first on sys.path, so run anywhere
    # else, both A and B would import the `scaling` package found there
    out = subprocess.run([sys.executable, "-m", "scaling.cli", *args], env=env, text=True,
                         capture_output=True, check=False, cwd=root)
    print(out.stdout, end="", flush=True)
    m = re.search(pattern, out.stdout)
    if out.returncode or not m:
        raise SystemExit(f"{root}: exit {out.returncode}\n{out.stdout}\n{out.stderr[-3000:]}")
    return float(m.group(1).replace(",", ""))


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True, help="checkout A (e.g. the old code)")
    p.add_argument("--b", required=True, help="checkout B (e.g. this worktree)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--pattern", default=r"([\d,]+) tokens/s",
                   help="regex whose group 1 is the figure to compare (default: tokens/s; "
                        "for bench torch: 'median ratio .*: ([\\d.]+)')")
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then the scaling arguments")
    args = p.parse_args(argv)
    cmd = args.args[1:] if args.args[:1] == ["--"] else args.args
    ratios = []
    for r in range(args.rounds):
        a, b = figure(args.a, cmd, args.pattern), figure(args.b, cmd, args.pattern)
        ratios.append(b / a)
        print(f"== round {r + 1}: A {a:,.3f}, B {b:,.3f}, B/A {b / a:.3f}", flush=True)
    print(f"median B/A over {args.rounds} rounds: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
