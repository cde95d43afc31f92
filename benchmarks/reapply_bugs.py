"""Re-apply the eight bugs of issue 26 to a scratch copy of the repository, one at a time,
and list which tests fail for each (never run in CI; docs/testing.md has the table).

Usage: python benchmarks/reapply_bugs.py [--scratch DIR] [NAME ...]
Each bug is an exact text replacement that must match once; a bug whose tests all pass is
reported as MISSED and the script exits 1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name: (file, original text, buggy text, test files that touch the module); several edits
# of one file: a list of (original, buggy) pairs and None
BUGS = {
    "decay on every parameter": (
        "scaling/train/optimizer.py",
        "weight_decay=optim.weight_decay, mask=decay_mask",
        "weight_decay=optim.weight_decay, mask=None",
        ["tests/test_oracles_optim.py", "tests/test_mup.py"],
    ),
    "no gradient clipping": (
        "scaling/train/optimizer.py",
        "parts = [optax.clip_by_global_norm(optim.clip_norm)] if optim.clip_norm > 0 else []",
        "parts = []",
        ["tests/test_oracles_optim.py", "tests/test_mup.py"],
    ),
    "MFU times the peak": (
        "scaling/metrics.py",
        '"mfu": achieved / self.peak',
        '"mfu": achieved * self.peak',
        ["tests/test_oracles_metrics.py", "tests/test_profiling.py"],
    ),
    "NSP accuracy inverted": (
        "scaling/families/masked_lm.py",
        'hit = (jnp.argmax(nsp_logits, -1) == batch["nsp_labels"])',
        'hit = (jnp.argmax(nsp_logits, -1) != batch["nsp_labels"])',
        ["tests/test_oracles_metrics.py", "tests/test_data_nsp.py"],
    ),
    "N and D swapped in scaling fit": (
        "scaling/laws/fit.py",
        "fit = parametric.fit_parametric(results.n, results.d, results.loss,",
        "fit = parametric.fit_parametric(results.d, results.n, results.loss,",
        ["tests/test_oracles_fit.py", "tests/test_laws_fit.py", "tests/test_laws_results.py"],
    ),
    "temperature and UTF-8 prompt checks deleted": (
        "scaling/commands/generate.py",
        [
            ("if not args.temperature >= 0 or not math.isfinite(args.temperature):", "if False:"),
            (
                '        args.prompt.encode("utf-8")\n    except UnicodeEncodeError:',
                "        pass\n    except UnicodeEncodeError:",
            ),
        ],
        None,
        ["tests/test_reliability.py::test_bad_flags", "tests/test_cli.py"],
    ),
    "lock heartbeat never rewritten": (
        "scaling/lock.py",
        "                    return  # taken over (we were presumed dead): stop claiming it\n"
        "                self._write(since)\n",
        "                    return  # taken over (we were presumed dead): stop claiming it\n",
        [
            "tests/test_lock_heartbeat.py",
            "tests/test_remote_workdir.py::test_an_object_lock_names_its_holder_and_expires",
        ],
    ),
    "temperature as logits * T": (
        "scaling/models/decoding.py",
        "logits = logits / temperature",
        "logits = logits * temperature",
        ["tests/test_oracles_sampling.py", "tests/test_generate.py"],
    ),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="bugs to apply (default: all)")
    p.add_argument("--scratch", default="/tmp/reapply_bugs")
    a = p.parse_args(argv)
    missed = 0
    for name in a.names or BUGS:
        file, good, bad, tests = BUGS[name]
        edits = good if bad is None else [(good, bad)]
        if os.path.exists(a.scratch):
            shutil.rmtree(a.scratch)
        shutil.copytree(
            REPO,
            a.scratch,
            ignore=shutil.ignore_patterns(
                ".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache"
            ),
        )
        path = os.path.join(a.scratch, file)
        text = open(path).read()
        for old, new in edits:
            if text.count(old) != 1:
                print(f"{name}: {old!r} is not in {file} once; update BUGS")
                return 2
            text = text.replace(old, new)
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, PYTHONPATH=a.scratch, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-n",
                "0",
                "-p",
                "no:cacheprovider",
                "-rf",
                *tests,
            ],
            cwd=a.scratch,
            env=env,
            capture_output=True,
            text=True,
        )
        failed = sorted(set(re.findall(r"^FAILED (.+?)(?: - .*)?$", proc.stdout, re.M)))
        missed += not failed
        print(f"## {name} ({file})\n  tests run: {' '.join(tests)}")
        print("  failing: " + (", ".join(failed) if failed else "NONE (MISSED)"), flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
