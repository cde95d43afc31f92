"""Chinchilla approach 1: the lower envelope of learning curves (Hoffmann et al. 2022 §3.1).

Every run's logged losses are a curve of loss against the FLOPs spent so far (6 N x tokens
seen). At each FLOP value C the lowest loss over all runs marks the compute-optimal run
there: its N is N_opt(C) and D_opt(C) = C / (6 N_opt). Power laws N_opt = k_n C^a and
D_opt = k_d C^b are fitted to the envelope in log-log space, and so is the envelope's loss,
L_opt = k_l C^-gamma_l (a pure power law: the envelope spans too little compute to pin an
irreducible term). Intervals come from a bootstrap over runs.

Caveat (Hoffmann et al. §3.1 use one cosine cycle per run for the same reason): under a
cosine schedule an intermediate loss of a long run is not the loss a shorter run with its
own, fully decayed schedule reaches at that compute, so the envelope favours runs near their
end and reads N_opt off a few distinct sizes; treat its exponents as a cross-check of
approaches 2 and 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scaling.laws import optimize
from scaling.laws.optimize import FitError


@dataclass(frozen=True)
class Curve:
    """One run's learning curve: its parameters N and (FLOPs so far, loss) pairs."""

    name: str
    n: float
    c: np.ndarray  # [K] increasing FLOPs spent at each logged loss
    loss: np.ndarray  # [K]


@dataclass(frozen=True)
class EnvelopeFit:
    """N_opt = k_n C^a, D_opt = k_d C^b, L_opt = k_l C^-gamma_l on the lower envelope."""

    a: float
    b: float
    k_n: float
    k_d: float
    k_l: float
    gamma_l: float
    grid: np.ndarray  # [G] FLOP values of the envelope
    env_n: np.ndarray  # [G] N of the lowest-loss run at each
    env_loss: np.ndarray  # [G]
    n_runs: int
    intervals: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)
    level: float = 0.95

    def params(self) -> dict:
        return {"a": self.a, "b": self.b, "k_n": self.k_n, "k_d": self.k_d, "k_l": self.k_l,
                "gamma_l": self.gamma_l}  # fmt: skip

    def predict(self, compute: float) -> dict:
        """N_opt, D_opt and the envelope's loss at `compute`, with bootstrap intervals."""
        out = {"C": float(compute)} | _at(self.params(), compute)
        if self.samples:
            reps = [_at(s, compute) for s in self.samples]
            for key, bounds in optimize.intervals(reps, self.level).items():
                out[f"{key}_ci"] = bounds
        return out


def _at(p: dict, compute: float) -> dict:
    n_opt = p["k_n"] * compute ** p["a"]
    return {"N_opt": n_opt, "D_opt": compute / (6 * n_opt),
            "loss": p["k_l"] * compute ** -p["gamma_l"]}  # fmt: skip


def envelope(curves: list[Curve], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, loss) of the lowest curve at each grid FLOP value, interpolating each curve
    linearly in log C between its logged points; NaN where no curve reaches."""
    table = np.full((len(curves), len(grid)), np.inf)  # [R, G]
    log_grid = np.log(grid)
    for i, cv in enumerate(curves):
        inside = (grid >= cv.c[0] * (1 - 1e-9)) & (grid <= cv.c[-1] * (1 + 1e-9))
        table[i, inside] = np.interp(log_grid[inside], np.log(cv.c), cv.loss)
    best = np.argmin(table, axis=0)
    loss = table[best, np.arange(len(grid))]
    n = np.array([curves[j].n for j in best], float)
    missing = ~np.isfinite(loss)
    return np.where(missing, np.nan, n), np.where(missing, np.nan, loss)


def default_grid(curves: list[Curve]) -> np.ndarray:
    """Every logged FLOP value between the smallest and the largest run's final compute:
    where runs end, so the envelope is not read off warmup."""
    lo = min(cv.c[-1] for cv in curves) * (1 - 1e-9)
    hi = max(cv.c[-1] for cv in curves) * (1 + 1e-9)
    values = np.unique(np.concatenate([cv.c for cv in curves]))
    return values[(values >= lo) & (values <= hi)]


def _laws(curves: list[Curve], grid: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    env_n, env_loss = envelope(curves, grid)
    ok = np.isfinite(env_n)
    if len(np.unique(env_n[ok])) < 2:
        raise FitError(
            "approach 1 needs at least 2 run sizes on the lower envelope of the "
            "learning curves, found fewer; log evaluations across more sizes"
        )
    log_c = np.log(grid[ok])
    a, ln_kn = np.polyfit(log_c, np.log(env_n[ok]), 1)
    neg_gamma, ln_kl = np.polyfit(log_c, np.log(env_loss[ok]), 1)
    p = {"a": float(a), "b": float(1 - a), "k_n": float(np.exp(ln_kn)),
         "k_d": float(np.exp(-ln_kn) / 6), "k_l": float(np.exp(ln_kl)),
         "gamma_l": float(-neg_gamma)}  # fmt: skip
    return p, env_n, env_loss


@optimize.serial_blas
def fit_envelope(curves: list[Curve], *, grid: np.ndarray | None = None, n_boot: int = 0,
                 seed: int = 0, level: float = 0.95) -> EnvelopeFit:  # fmt: skip
    """Approach 1 on `curves`, then `n_boot` refits on resamples of the runs."""
    if len(curves) < 2:
        raise FitError(f"approach 1 needs the learning curves of at least 2 runs, got "
                       f"{len(curves)}")  # fmt: skip
    grid = default_grid(curves) if grid is None else np.asarray(grid, float)
    point, env_n, env_loss = _laws(curves, grid)

    def refit(idx):
        return _laws([curves[i] for i in idx], grid)[0]

    samples = optimize.bootstrap(refit, optimize.resample_rows(len(curves)), n_boot, seed)
    return EnvelopeFit(**point, grid=grid, env_n=env_n, env_loss=env_loss, n_runs=len(curves),
                       intervals=optimize.intervals(samples, level), samples=samples,
                       level=level)  # fmt: skip


def curves_from_metrics(
    metrics: dict[str, list[dict]],
    n_of: dict[str, float],
    flops_per_step: dict[str, float],
    key: str = "eval_loss",
) -> list[Curve]:
    """Curves from runs' metrics.jsonl rows: C = step x FLOPs per step (6 N x tokens per
    step), loss = `key` (eval_loss: the validation loss the fits use; loss: training loss).
    Runs missing from `n_of` or `flops_per_step`, or with no `key`, are left out."""
    out = []
    for name in sorted(metrics):
        if name not in n_of or name not in flops_per_step:
            continue
        points = {}
        for row in metrics[name]:
            if key in row and "step" in row and row["step"] > 0:
                points[int(row["step"])] = float(row[key])  # a resumed run's repeat wins
        if not points:
            continue
        steps = np.array(sorted(points), float)
        out.append(Curve(name, float(n_of[name]), steps * flops_per_step[name],
                         np.array([points[int(s)] for s in steps])))  # fmt: skip
    return out


def curves_from_runs(results_path: str, runs: str, n_col: str = "N",
                     key: str = "eval_loss") -> list[Curve]:
    """Approach 1's learning curves: every finished run directory under `runs` that the
    results table names (a run still training has only part of its curve); N from the
    table's `n_col`, FLOPs per step from its N, D and steps (results.run_scales)."""
    import os

    from scaling.laws import results
    from scaling.laws.sweep import is_finished

    n_of = {}
    for _, row in results.read_rows(results_path):
        try:
            n_of[str(row["name"])] = float(row[n_col])
        except (KeyError, TypeError, ValueError):
            continue
    flops, _ = results.run_scales(results_path)
    metrics = {name: results.load_metrics(path) for name, path in
               results.find_runs(runs).items()
               if name in n_of and is_finished(os.path.dirname(path))}  # fmt: skip
    return curves_from_metrics(metrics, n_of, flops, key)
