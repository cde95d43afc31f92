"""Chinchilla approach 2: IsoFLOP profiles (Hoffmann et al. 2022 §3.2).

Runs sharing a compute budget C form an IsoFLOP profile. A parabola in log N fitted to each
profile's losses has its minimum at N_opt(C); D_opt(C) = C / (6 N_opt). A line through
(log C, log N_opt) gives N_opt ∝ C^a, and D_opt ∝ C^b; a line through (log C, log L_min)
gives the minima's loss L_opt = k_l C^-gamma_l (a pure power law: a few budgets cannot pin
an irreducible term). Intervals come from a bootstrap that resamples the runs within each
profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scaling.laws import optimize
from scaling.laws.optimize import FitError

MIN_POINTS = 3  # a parabola needs three runs per budget


@dataclass(frozen=True)
class Profile:
    """One IsoFLOP budget: its runs, the parabola loss = p2 x^2 + p1 x + p0 (x = ln N)."""

    budget: float
    index: np.ndarray  # rows of the results table in this profile
    coef: tuple  # (p2, p1, p0)
    n_opt: float
    loss_opt: float


@dataclass(frozen=True)
class IsoflopFit:
    """N_opt = k_n C^a, D_opt = k_d C^b and L_opt = k_l C^-gamma_l from per-budget parabola
    minima."""

    a: float
    b: float
    k_n: float
    k_d: float
    profiles: list
    k_l: float = float("nan")
    gamma_l: float = float("nan")
    intervals: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)  # bootstrap refits: dicts of a, b, k_n, k_d
    level: float = 0.95

    def params(self) -> dict:
        return {"a": self.a, "b": self.b, "k_n": self.k_n, "k_d": self.k_d, "k_l": self.k_l,
                "gamma_l": self.gamma_l}  # fmt: skip

    def predict(self, compute: float) -> dict:
        """N_opt = k_n C^a, D_opt = C / (6 N_opt) and the minima's loss law at `compute`,
        with bootstrap intervals."""
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


def group_budgets(compute, rel_tol: float = 0.05) -> np.ndarray:
    """Label runs whose compute agrees within `rel_tol` (consecutive in sorted order) as one
    budget; returns an integer label per run. Sweeps round steps, so C = 6ND drifts slightly
    from the nominal budget."""
    log_c = np.log(np.asarray(compute, float))
    order = np.argsort(log_c, kind="stable")
    breaks = np.diff(log_c[order]) > np.log1p(rel_tol)
    labels = np.empty(len(log_c), dtype=np.int64)
    labels[order] = np.concatenate([[0], np.cumsum(breaks)])
    return labels


def _profile(log_n, loss, budget, index) -> Profile | None:
    """The parabola of one budget, or None when it has no interior minimum."""
    if len(np.unique(log_n)) < MIN_POINTS:
        return None
    p2, p1, p0 = np.polyfit(log_n, loss, 2)
    if p2 <= 0:
        return None
    x_opt = -p1 / (2 * p2)
    if not log_n.min() <= x_opt <= log_n.max():
        return None  # the minimum lies outside the sizes tried: an extrapolation
    return Profile(budget, index, (p2, p1, p0), float(np.exp(x_opt)), float(np.polyval(
        (p2, p1, p0), x_opt)))  # fmt: skip


def _profiles(n, c, loss, labels) -> list[Profile]:
    out = []
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        budget = float(np.exp(np.mean(np.log(c[index]))))
        prof = _profile(np.log(n[index]), loss[index], budget, index)
        if prof is not None:
            out.append(prof)
    return out


def _exponents(profiles: list[Profile]) -> dict:
    if len(profiles) < 2:
        raise FitError(
            f"approach 2 needs at least 2 IsoFLOP budgets with {MIN_POINTS}+ sizes and an "
            f"interior loss minimum, found {len(profiles)}; group runs with --budget-col or "
            "add sizes around each budget's optimum"
        )
    log_c = np.log([p.budget for p in profiles])
    log_n = np.log([p.n_opt for p in profiles])
    log_d = log_c - np.log(6.0) - log_n
    a, ln_kn = np.polyfit(log_c, log_n, 1)
    b, ln_kd = np.polyfit(log_c, log_d, 1)
    neg_gamma, ln_kl = np.polyfit(log_c, np.log([p.loss_opt for p in profiles]), 1)
    return {"a": float(a), "b": float(b), "k_n": float(np.exp(ln_kn)), "k_d": float(np.exp(ln_kd)),
            "k_l": float(np.exp(ln_kl)), "gamma_l": float(-neg_gamma)}  # fmt: skip


@optimize.serial_blas
def fit_isoflop(
    n, c, loss, *, budget=None, rel_tol: float = 0.05, n_boot: int = 0, seed: int = 0,
    level: float = 0.95,
) -> IsoflopFit:  # fmt: skip
    """Approach 2 on runs (N, C, loss). `budget` (nominal budgets) groups runs when given,
    otherwise compute values within `rel_tol` of each other form one budget."""
    n, c, loss = (np.asarray(x, np.float64) for x in (n, c, loss))
    labels = group_budgets(c if budget is None else budget, rel_tol)
    profiles = _profiles(n, c, loss, labels)
    point = _exponents(profiles)

    def refit(rows):
        return _exponents(_profiles(n[rows], c[rows], loss[rows], labels[rows]))

    # Resample within each budget so every profile keeps its runs' size range.
    draw = optimize.resample_within([p.index for p in profiles])
    samples = optimize.bootstrap(refit, draw, n_boot, seed)
    return IsoflopFit(**point, profiles=profiles, intervals=optimize.intervals(samples, level),
                      samples=samples, level=level)  # fmt: skip
