"""Every fit of `scaling fit` on one results table, gathered into a JSON-ready summary.

The summary is what fit.json holds: approach 1 (the lower envelope of learning curves, §3.1)
when the runs' curves are given, approach 3 (the parametric L(N, D), Hoffmann et al. 2022
§3.3) with bootstrap intervals and its compute-optimal predictions for the chosen budgets,
approach 2 (IsoFLOP parabolas, §3.2), and the single-variable laws L(N), L(D), L(C)
(Kaplan et al. 2020 §1.2). A fit the data cannot support is recorded as {"error": why}
instead of stopping the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scaling.laws import envelope, isoflop, optimize, parametric, powerlaw
from scaling.laws.optimize import FitError
from scaling.laws.results import Results


@dataclass(frozen=True)
class FitSettings:
    """Knobs shared by every fit."""

    n_boot: int = 200
    seed: int = 0
    level: float = 0.95
    budgets: tuple = (1e21, 1e23)
    irreducible: bool = True  # fit E in L(N), L(D), L(C)
    budget_tol: float = 0.05  # relative compute spread grouped into one IsoFLOP budget
    grid: np.ndarray | None = None  # approach 3 starts; None = Hoffmann et al.'s grid
    starts: int = parametric.GRID_STARTS  # best grid points L-BFGS runs from; 0 = all


@dataclass(frozen=True)
class FitOutcome:
    """The fitted objects (for plots) and the JSON summary (for fit.json and the report)."""

    parametric: parametric.ParametricFit | None
    isoflop: isoflop.IsoflopFit | None
    power_laws: dict  # variable -> PowerLawFit
    summary: dict
    envelope: envelope.EnvelopeFit | None = None


def default_budgets(compute) -> tuple[float, ...]:
    """Every power of ten from the smallest run's compute to 100x the largest's."""
    lo = math.ceil(math.log10(min(compute)) - 0.05)  # runs a hair over a decade start there
    hi = math.ceil(math.log10(max(compute)) - 0.05) + 2
    return tuple(10.0**k for k in range(lo, hi + 1))


def _approach3(results: Results, s: FitSettings):
    for name, x in (("N", results.n), ("D", results.d)):
        if len(np.unique(x)) < 3:  # A/N^α (or B/D^β) and E cannot be told apart
            raise FitError(
                f"approach 3 needs at least 3 distinct values of {name}, found "
                f"{len(np.unique(x))}; vary both model size and tokens"
            )
    fit = parametric.fit_parametric(results.n, results.d, results.loss, n_boot=s.n_boot,
                                    seed=s.seed, level=s.level, grid=s.grid,
                                    starts=s.starts)  # fmt: skip
    grid = parametric.CHINCHILLA_GRID if s.grid is None else s.grid
    summary = {
        "law": "L(N, D) = E + A / N^alpha + B / D^beta",
        "params": fit.params(),
        "intervals": fit.intervals,
        "objective": fit.objective,
        "n_points": fit.n_points,
        "bootstrap_fits": len(fit.samples),
        "grid_points": len(grid),
        "lbfgs_starts": min(s.starts, len(grid)) if s.starts else len(grid),
        "predictions": [parametric.predict_budget(fit, c) for c in s.budgets],
    }
    return fit, summary


def _approach2(results: Results, s: FitSettings):
    fit = isoflop.fit_isoflop(results.n, results.c, results.loss, budget=results.budget,
                              rel_tol=s.budget_tol, n_boot=s.n_boot, seed=s.seed,
                              level=s.level)  # fmt: skip
    profiles = [
        {"C": p.budget, "runs": len(p.index), "N_opt": p.n_opt, "D_opt": p.budget / (6 * p.n_opt),
         "loss_opt": p.loss_opt}
        for p in fit.profiles
    ]  # fmt: skip
    predictions = [fit.predict(c) for c in s.budgets]
    summary = {
        "law": "N_opt = k_n C^a, D_opt = k_d C^b",
        "params": fit.params(),
        "intervals": fit.intervals,
        "profiles": profiles,
        "predictions": predictions,
        "bootstrap_fits": len(fit.samples),
    }
    return fit, summary


def _approach1(curves: list, s: FitSettings):
    fit = envelope.fit_envelope(curves, n_boot=s.n_boot, seed=s.seed, level=s.level)
    sizes = sorted({float(n) for n in fit.env_n if np.isfinite(n)})
    summary = {
        "law": "N_opt = k_n C^a, D_opt = k_d C^b, L_opt = k_l C^-gamma_l (lower envelope)",
        "params": fit.params(),
        "intervals": fit.intervals,
        "curves": fit.n_runs,
        "envelope_points": int(np.sum(np.isfinite(fit.env_n))),
        "envelope_sizes": sizes,
        "C_range": [float(fit.grid.min()), float(fit.grid.max())],
        "predictions": [fit.predict(c) for c in s.budgets],
        "bootstrap_fits": len(fit.samples),
        "caveat": "under a cosine schedule a long run's intermediate loss is not the loss of "
                  "a shorter run with its own decayed schedule; the envelope reads N_opt off "
                  "the few sizes that lead it",
    }  # fmt: skip
    return fit, summary


def _power_law(x, results: Results, variable: str, s: FitSettings):
    fit = powerlaw.fit_power_law(x, results.loss, variable=variable, irreducible=s.irreducible,
                                 n_boot=s.n_boot, seed=s.seed, level=s.level)  # fmt: skip
    law = f"L({variable}) = E + ({variable}_c / {variable})^alpha_{variable}"
    summary = {"law": law, "params": fit.params(), "intervals": fit.intervals,
               "n_points": fit.n_points}  # fmt: skip
    return fit, summary


def _attempt(fn, *args):
    try:
        return fn(*args)
    except FitError as e:
        return None, {"error": str(e)}


def run_fits(results: Results, settings: FitSettings, curves: list | None = None) -> FitOutcome:
    """Approach 3, approach 2, approach 1 (when `curves`, the runs' learning curves, are
    given) and L(N), L(D), L(C) on `results`, each with its intervals."""
    fit1, summary1 = _attempt(_approach1, curves, settings) if curves else (None, None)
    fit3, summary3 = _attempt(_approach3, results, settings)
    fit2, summary2 = _attempt(_approach2, results, settings)
    laws, law_summaries = {}, {}
    for variable, x in (("N", results.n), ("D", results.d), ("C", results.c)):
        fit, law_summaries[variable] = _attempt(_power_law, x, results, variable, settings)
        if fit is not None:
            laws[variable] = fit
    summary = {
        "source": results.source,
        "n_runs": len(results),
        "settings": {
            "bootstrap": settings.n_boot,
            "seed": settings.seed,
            "level": settings.level,
            "huber_delta": optimize.HUBER_DELTA,
            "budgets": list(settings.budgets),
        },  # fmt: skip
        "approach3": summary3,
        "approach2": summary2,
        **({"approach1": summary1} if summary1 else {}),
        "power_laws": law_summaries,
        "comparison": compare_exponents(summary2, summary3),
        "data": data_ranges(results),
    }
    return FitOutcome(fit3, fit2, laws, to_json_ready(summary), fit1)


def compare_exponents(approach2: dict, approach3: dict) -> dict:
    """a (N_opt ∝ C^a) from approaches 2 and 3 side by side: their difference and whether
    their intervals overlap (the check Hoffmann et al. Table 2 makes across approaches)."""
    if "error" in approach2 or "error" in approach3:
        return {}
    a2, a3 = approach2["params"]["a"], approach3["params"]["a"]
    out = {"a_approach2": a2, "a_approach3": a3, "difference": a3 - a2}
    i2, i3 = approach2["intervals"].get("a"), approach3["intervals"].get("a")
    if i2 and i3:
        out |= {
            "a_approach2_ci": i2,
            "a_approach3_ci": i3,
            "intervals_overlap": bool(i2[0] <= i3[1] and i3[0] <= i2[1]),
            "each_inside_other": bool(i3[0] <= a2 <= i3[1] and i2[0] <= a3 <= i2[1]),
        }
    return out


def data_ranges(results: Results) -> dict:
    """The span of the runs: what any prediction beyond it extrapolates from."""

    def span(x):
        return [float(np.min(x)), float(np.max(x))]

    out = {
        "N": span(results.n),
        "D": span(results.d),
        "C": span(results.c),
        "tokens_per_param": span(results.d / results.n),
        "loss": span(results.loss),
    }
    if results.budget is not None:
        out["budgets"] = sorted({float(b) for b in results.budget})
    return out


def to_json_ready(value):
    """Plain Python numbers and containers; non-finite floats become None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): to_json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [to_json_ready(v) for v in value]
    if isinstance(value, np.integer | int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.floating | float):
        return float(value) if math.isfinite(value) else None
    return value
