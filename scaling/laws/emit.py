"""`scaling fit --emit-sweep FILE`: the sweep spec that checks a prediction.

From the spec of the sweep that was fitted, a spec with the same base, settings and model
shapes whose budgets are the predicted ones, each training the width nearest every
approach's predicted N_opt and one width either side (tokens = C / 6N, as the sweep plans
any IsoFLOP budget), so the check is one `scaling sweep` away.
"""

from __future__ import annotations

import copy
import json

import numpy as np

from scaling.laws import sweep
from scaling.laws.sweep import SpecError

DROP = ("tokens", "lrs")  # one run per (width, budget): the spec's rate, no token budgets


def ladder(spec: dict) -> list[tuple[int, float]]:
    """(d_model, N) of every shape the spec defines, in increasing N (N counted as the spec's
    `count`)."""
    probe = {k: v for k, v in copy.deepcopy(spec).items() if k not in DROP + ("variants",)}
    probe["budgets"] = [1.0]  # any budget: every shape once
    sizes = {r.config.model.d_model: _n(r, spec) for r in sweep.expand(probe)}
    return sorted(sizes.items(), key=lambda kv: kv[1])


def _n(run: sweep.Run, spec: dict) -> float:
    from scaling.laws import accounting

    return float(accounting.param_counts(run.config.model)[spec.get("count", "total")])


def nearest_widths(sizes: list[tuple[int, float]], n_opts: list[float]) -> list[int]:
    """The widths nearest each N_opt in log N, with one neighbour either side of each."""
    log_n = np.log([n for _, n in sizes])
    chosen = set()
    for n_opt in n_opts:
        i = int(np.argmin(np.abs(log_n - np.log(n_opt))))
        chosen.update(range(max(0, i - 1), min(len(sizes), i + 2)))
    return [sizes[i][0] for i in sorted(chosen)]


def emit_spec(spec: dict, records: list[dict]) -> dict:
    """The check spec for prediction `records` (each with budget and N_opt)."""
    sizes = ladder(spec)
    out = {k: v for k, v in copy.deepcopy(spec).items() if k not in DROP}
    budgets = {}
    for c in dict.fromkeys(r["budget"] for r in records):
        budgets[float(c)] = nearest_widths(sizes, [r["N_opt"] for r in records
                                                   if r["budget"] == c])  # fmt: skip
    out["budgets"] = budgets
    sweep.expand(out)  # a spec `scaling sweep` accepts, or the error now
    return out


def write_spec(spec: dict, path: str, header: str = "") -> None:
    """YAML for .yaml/.yml, JSON otherwise."""
    if path.endswith((".yaml", ".yml")):
        import yaml

        text = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=100)
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    else:
        text = json.dumps(spec, indent=2) + "\n"
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise SpecError(f"--emit-sweep {path}: cannot write ({e.strerror})") from None
