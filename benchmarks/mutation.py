"""Mutation score of one module against the test files that touch it (never run in CI).

The mutants are mutmut's (`mutmut.file_mutation.create_mutations`: operators, numbers,
comparisons, keywords, names, strings, argument removal); mutmut's own runner (trampolines
plus a forked in-process pytest) does not suit a JAX codebase whose tests fork and whose
conftest fixes 8 fake devices per process, so this driver applies each mutant to a scratch
copy of the repository, one at a time, and runs the named test files in a fresh process with
a per-mutant timeout. A mutant is killed when the tests fail or time out; it survives when
they pass. Results go to a JSON-lines file, one line per mutant, appended as they finish.

Usage (in a venv with `pip install mutmut==3.3.1`; `--python` runs the tests):
  python benchmarks/mutation.py scaling/schedules.py tests/test_oracles_optim.py \
      --python .venv/bin/python --functions schedule,rsqrt_schedule --out /tmp/mut.jsonl
See docs/testing.md for the modules, their test files and the scores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mutants(source: str, functions: set[str] | None):
    """(function, line, original code, mutated module code) for each mutmut mutant."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider
    from mutmut.file_mutation import create_mutations, deep_replace

    module, mutations = create_mutations(source)
    lines = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    for m in mutations:
        fn = m.contained_by_top_level_function
        name = getattr(getattr(fn, "name", None), "value", None)
        if name is None or (functions and name not in functions):
            continue  # module-level code (constants, imports) is not mutated
        pos = lines.get(m.original_node)
        line = pos.start.line if pos else -1
        empty = cst.Module([])
        before = empty.code_for_node(m.original_node)
        after = empty.code_for_node(m.mutated_node)
        if before == after:
            continue
        yield name, line, before, after, deep_replace(module, m.original_node, m.mutated_node).code


def scratch_copy(dest: str) -> None:
    """A copy of the repository without .git, virtual environments and caches."""
    if os.path.exists(dest):
        shutil.rmtree(dest)
    ignore = shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", "mutants", ".ruff_cache"
    )
    shutil.copytree(REPO, dest, ignore=ignore)


def run_tests(python: str, root: str, tests: list[str], k: str | None, timeout: float) -> str:
    """'pass', 'fail' or 'timeout' for the test files in one fresh process."""
    cmd = [python, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", *tests]
    if k:
        cmd += ["-k", k]
    env = dict(os.environ, PYTHONPATH=root, PYTHONDONTWRITEBYTECODE="1")
    try:
        proc = subprocess.run(
            cmd,
            cwd=root,
            env=env,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    return "pass" if proc.returncode == 0 else "fail"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("module", help="e.g. scaling/schedules.py")
    p.add_argument("tests", nargs="+", help="test files run against each mutant")
    p.add_argument("--python", default=sys.executable, help="the interpreter that runs pytest")
    p.add_argument("--functions", default="", help="comma list: mutate only these functions")
    p.add_argument("-k", default=None, help="pytest -k expression")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    p.add_argument("--scratch", default="/tmp/mutation_scratch")
    p.add_argument("--out", required=True, help="JSON lines, one per mutant")
    p.add_argument("--only", default="", help="comma list of mutant indices (e.g. survivors)")
    a = p.parse_args(argv)
    scratch_copy(a.scratch)
    target = os.path.join(a.scratch, a.module)
    with open(target) as f:
        original = f.read()
    fns = {x for x in a.functions.split(",") if x} or None
    todo = list(enumerate(mutants(original, fns)))
    if a.only:
        keep = {int(i) for i in a.only.split(",")}
        todo = [t for t in todo if t[0] in keep]
    print(f"{a.module}: {len(todo)} mutants", flush=True)
    t0 = time.time()
    baseline = run_tests(a.python, a.scratch, a.tests, a.k, a.timeout * 3)
    if baseline != "pass":
        print(f"the unmutated tests do not pass ({baseline}); fix that first", flush=True)
        return 2
    print(f"baseline passes in {time.time() - t0:.0f} s", flush=True)
    with open(a.out, "a") as out:
        for n, (i, (fn, line, before, after, code)) in enumerate(todo):
            with open(target, "w") as f:
                f.write(code)
            t = time.time()
            try:
                status = run_tests(a.python, a.scratch, a.tests, a.k, a.timeout)
            finally:
                with open(target, "w") as f:
                    f.write(original)
            row = {
                "module": a.module,
                "index": i,
                "function": fn,
                "line": line,
                "before": before[:200],
                "after": after[:200],
                "result": "survived" if status == "pass" else "killed",
                "how": status,
                "seconds": round(time.time() - t, 1),
            }
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(
                f"[{n + 1}/{len(todo)}] #{i} {row['result']:8s} {fn}:{line} "
                f"{before[:60]!r} -> {after[:60]!r}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
