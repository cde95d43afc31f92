"""Chinchilla approach 3: fit L(N, D) = E + A / N^alpha + B / D^beta to every run.

Hoffmann et al. 2022 §3.3 and App. D.2: with a = log A, b = log B, e = log E, minimize

    sum_i Huber_delta( LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i ),  delta = 1e-3,

with L-BFGS from a grid of starting points. Besiroglu et al. 2024 replicate the fit on data
extracted from Chinchilla's Figure 4 and bootstrap the points for confidence intervals.
Minimizing L for fixed C = 6ND gives the compute-optimal allocation (Chinchilla eq. 4):
N_opt(C) = G (C/6)^a, D_opt(C) = G^-1 (C/6)^b, a = beta/(alpha+beta), b = alpha/(alpha+beta),
G = (alpha A / (beta B))^(1/(alpha+beta)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scaling.laws import optimize
from scaling.laws.optimize import FitError

# Hoffmann et al. 2022 App. D.2 initialization grid, columns (a, b, e, alpha, beta).
CHINCHILLA_GRID = optimize.grid(
    a=np.arange(0, 30, 5),
    b=np.arange(0, 30, 5),
    e=np.arange(-1, 1.5, 0.5),
    alpha=np.arange(0, 2.5, 0.5),
    beta=np.arange(0, 2.5, 0.5),
)
GRID_STARTS = 128  # L-BFGS runs from the grid points with the lowest objective (0: all)
BOOTSTRAP_STARTS = 4  # grid starts per bootstrap replicate, besides the full-data optimum
PARAMS = ("E", "A", "B", "alpha", "beta")


@dataclass(frozen=True)
class ParametricFit:
    """Fitted (E, A, B, alpha, beta), derived allocation exponents, bootstrap intervals."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    n_points: int
    intervals: dict = field(default_factory=dict)  # name -> [lo, hi]
    samples: list = field(default_factory=list)  # bootstrap replicates, dicts of floats
    level: float = 0.95

    @property
    def a(self) -> float:
        """Exponent of N_opt(C) (Chinchilla eq. 4)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt(C)."""
        return self.alpha / (self.alpha + self.beta)

    def params(self) -> dict:
        """The five law parameters plus a, b and G as plain floats."""
        return {k: float(getattr(self, k)) for k in PARAMS} | _derived(self.values())

    def values(self) -> np.ndarray:
        return np.array([self.E, self.A, self.B, self.alpha, self.beta])


def predict_loss(values, n, d) -> np.ndarray:
    """L(N, D) = E + A / N^alpha + B / D^beta for values (E, A, B, alpha, beta)."""
    e, a, b, alpha, beta = values
    return e + a / np.asarray(n, float) ** alpha + b / np.asarray(d, float) ** beta


def compute_optimal(values, compute) -> dict:
    """N_opt, D_opt and the loss there for training budget `compute` (Chinchilla eq. 4)."""
    e, a, b, alpha, beta = values
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    n_opt = g * (np.asarray(compute, float) / 6) ** (beta / (alpha + beta))
    d_opt = np.asarray(compute, float) / (6 * n_opt)
    return {"N_opt": n_opt, "D_opt": d_opt, "loss": predict_loss(values, n_opt, d_opt)}


def _derived(values) -> dict:
    e, a, b, alpha, beta = values
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    return {"a": beta / (alpha + beta), "b": alpha / (alpha + beta), "G": float(g)}


def _objective(log_n, log_d, log_l, delta):
    """Huber objective of theta = (a, b, e, alpha, beta) and its gradient."""

    def fun(theta):
        a, b, e, alpha, beta = theta
        terms = np.stack([a - alpha * log_n, b - beta * log_d, np.full_like(log_n, e)], -1)
        pred, w = optimize.logsumexp_terms(terms)  # [P], [P, 3]
        value, dr = optimize.huber(pred - log_l, delta)
        grad = np.array([
            np.sum(dr * w[:, 0]), np.sum(dr * w[:, 1]), np.sum(dr * w[:, 2]),
            -np.sum(dr * w[:, 0] * log_n), -np.sum(dr * w[:, 1] * log_d),
        ])  # fmt: skip
        return float(np.sum(value)), grad

    def on_grid(thetas):  # [S, 5] -> [S], in chunks to bound memory
        out = []
        for chunk in np.array_split(thetas, max(1, len(thetas) // 256)):
            a, b, e, alpha, beta = (chunk[:, k, None] for k in range(5))  # [S, 1] each
            shape = (len(chunk), log_n.size)
            terms = np.stack([a - alpha * log_n, b - beta * log_d, np.broadcast_to(e, shape)], -1)
            pred, _ = optimize.logsumexp_terms(terms)  # [S, P]
            out.append(np.sum(optimize.huber(pred - log_l, delta)[0], axis=1))
        return np.concatenate(out)

    return fun, on_grid


def _fit_once(n, d, loss, starts, delta) -> tuple[np.ndarray, float]:
    fun, _ = _objective(np.log(n), np.log(d), np.log(loss), delta)
    theta, value = optimize.minimize_from_starts(fun, starts)
    a, b, e, alpha, beta = theta
    if alpha <= 0 or beta <= 0:
        raise FitError(
            f"approach 3 found non-positive exponents (alpha={alpha:.3g}, beta={beta:.3g}); "
            "the data do not constrain L(N, D): add runs over a wider range of N and D"
        )
    return np.array([np.exp(e), np.exp(a), np.exp(b), alpha, beta]), value


def _screen(n, d, loss, grid, k, delta) -> np.ndarray:
    """The `k` grid points with the lowest objective (every point when k is 0)."""
    if not k or k >= len(grid):
        return grid
    _, on_grid = _objective(np.log(n), np.log(d), np.log(loss), delta)
    return optimize.best_starts(on_grid, grid, k)


def _theta(values) -> np.ndarray:
    e, a, b, alpha, beta = values
    return np.array([np.log(a), np.log(b), np.log(e), alpha, beta])


@optimize.serial_blas
def fit_parametric(
    n, d, loss, *, n_boot: int = 0, seed: int = 0, level: float = 0.95,
    grid: np.ndarray | None = None, starts: int = GRID_STARTS,
    delta: float = optimize.HUBER_DELTA,
) -> ParametricFit:  # fmt: skip
    """Approach 3 on runs (N, D, loss), then `n_boot` bootstrap refits for intervals.

    The grid (default: Hoffmann et al.'s App. D.2 grid of 4500 points) is screened by its
    objective and L-BFGS runs from the best `starts` points (0 = from every point, as
    Hoffmann et al.; on the Chinchilla data both find the same optimum, screening in a
    fraction of the time). Each bootstrap refit starts from the full-data optimum and the
    `BOOTSTRAP_STARTS` best grid points of its resample; results depend only on the data
    and the seed.
    """
    n, d, loss = (np.asarray(x, np.float64) for x in (n, d, loss))
    if len(loss) < 5:
        raise FitError(f"approach 3 fits 5 parameters and needs at least 5 runs, got {len(loss)}")
    grid = CHINCHILLA_GRID if grid is None else np.asarray(grid, np.float64)
    values, objective = _fit_once(n, d, loss, _screen(n, d, loss, grid, starts, delta), delta)
    theta0 = _theta(values)

    def refit(idx):
        top = _screen(n[idx], d[idx], loss[idx], grid, BOOTSTRAP_STARTS, delta)
        v, _ = _fit_once(n[idx], d[idx], loss[idx], np.vstack([theta0[None], top]), delta)
        return dict(zip(PARAMS, map(float, v), strict=True)) | _derived(v)

    samples = optimize.bootstrap(refit, optimize.resample_rows(len(loss)), n_boot, seed)
    return ParametricFit(*map(float, values), objective=objective, n_points=len(loss),
                         intervals=optimize.intervals(samples, level), samples=samples,
                         level=level)  # fmt: skip


def predict_budget(fit: ParametricFit, compute: float) -> dict:
    """Compute-optimal N, D and loss at `compute` FLOPs, with bootstrap intervals."""
    point = {k: float(v) for k, v in compute_optimal(fit.values(), compute).items()}
    out = {"C": float(compute), **point}
    if fit.samples:
        reps = [compute_optimal([s[k] for k in PARAMS], compute) for s in fit.samples]
        reps = [{k: float(v) for k, v in r.items()} for r in reps]
        for key, bounds in optimize.intervals(reps, fit.level).items():
            out[f"{key}_ci"] = bounds
    return out
