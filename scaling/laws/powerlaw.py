"""Single-variable power laws L(X) = E + (X_c / X)^alpha_X for X in {N, D, C}.

Kaplan et al. 2020 §1.2 (eqs. 1.1-1.3) fit L(N), L(D) and L(C_min) without the constant E;
Hoffmann et al. 2022 and later work add the irreducible loss E. Kaplan fit each law on runs
limited only by that variable; on a sweep table we take the lower envelope instead: the runs
whose loss beats every run with a smaller X. Fitting follows Chinchilla approach 3's recipe
(Huber delta = 1e-3 on log loss, log-sum-exp form, L-BFGS from a grid of starts):
log L = LSE(e, k - alpha log X), e = log E, k = alpha log X_c.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scaling.laws import optimize
from scaling.laws.optimize import FitError

# Starting points (e, alpha, k); k = alpha log X_c spans X_c from ~1 to far beyond the data.
START_GRID = optimize.grid(
    e=[-1.0, 0.0, 0.5, 1.0],
    alpha=[0.05, 0.1, 0.3, 0.6, 1.0],
    k=[0.0, 2.0, 5.0, 10.0, 20.0],
)
GRID_KEEP = 5  # L-BFGS runs from the grid points with the lowest objective


@dataclass(frozen=True)
class PowerLawFit:
    """L(X) = E + (X_c / X)^alpha with bootstrap intervals; E = 0 when not fitted."""

    variable: str
    E: float
    x_c: float
    alpha: float
    n_points: int
    intervals: dict = field(default_factory=dict)

    def params(self) -> dict:
        return {"E": self.E, "x_c": self.x_c, "alpha": self.alpha}

    def __call__(self, x) -> np.ndarray:
        return self.E + (self.x_c / np.asarray(x, float)) ** self.alpha


def lower_envelope(x, loss) -> np.ndarray:
    """Indices (sorted by x) of runs with lower loss than every run of smaller x."""
    x, loss = np.asarray(x, float), np.asarray(loss, float)
    order = np.lexsort((loss, x))
    best = np.minimum.accumulate(loss[order])
    keep = np.concatenate([[True], loss[order][1:] < best[:-1]])
    return order[keep]


def _objective(log_x, log_l, delta):
    """Huber objective of theta = (e, alpha, k) with its gradient, and its values on a grid."""

    def fun(theta):
        e, alpha, k = theta
        terms = np.stack([np.full_like(log_x, e), k - alpha * log_x], -1)  # [P, 2]
        pred, w = optimize.logsumexp_terms(terms)
        value, dr = optimize.huber(pred - log_l, delta)
        grad = [np.sum(dr * w[:, 0]), -np.sum(dr * w[:, 1] * log_x), np.sum(dr * w[:, 1])]
        return float(np.sum(value)), np.array(grad)

    def on_grid(thetas):  # [S, 3] -> [S]
        e, alpha, k = (thetas[:, j, None] for j in range(3))
        terms = np.stack([np.broadcast_to(e, (len(thetas), log_x.size)), k - alpha * log_x], -1)
        pred, _ = optimize.logsumexp_terms(terms)  # [S, P]
        return np.sum(optimize.huber(pred - log_l, delta)[0], axis=1)

    return fun, on_grid


def _fit_once(x, loss, irreducible: bool, delta: float, extra_start=None) -> dict:
    log_x, log_l = np.log(x), np.log(loss)
    if not irreducible:  # log L = k - alpha log X is linear: ordinary least squares
        slope, k = np.polyfit(log_x, log_l, 1)
        alpha, e = -slope, -np.inf
    else:
        fun, on_grid = _objective(log_x, log_l, delta)
        starts = optimize.best_starts(on_grid, START_GRID, GRID_KEEP)
        if extra_start is not None:
            starts = np.vstack([extra_start[None], starts])
        (e, alpha, k), _ = optimize.minimize_from_starts(fun, starts)
    if alpha <= 0:
        raise FitError(f"the loss does not fall with the variable (alpha={alpha:.3g})")
    return {"E": float(np.exp(e)), "x_c": float(np.exp(k / alpha)), "alpha": float(alpha)}


@optimize.serial_blas
def fit_power_law(
    x, loss, *, variable: str = "N", irreducible: bool = True, envelope: bool = True,
    n_boot: int = 0, seed: int = 0, level: float = 0.95, delta: float = optimize.HUBER_DELTA,
) -> PowerLawFit:  # fmt: skip
    """Fit L(X) = E + (X_c/X)^alpha (E = 0 unless `irreducible`) to the lower envelope of
    (x, loss) (or to every run with envelope=False), with `n_boot` bootstrap intervals."""
    x, loss = np.asarray(x, np.float64), np.asarray(loss, np.float64)
    if envelope:
        keep = lower_envelope(x, loss)
        x, loss = x[keep], loss[keep]
    need = 3 if irreducible else 2
    if len(x) < need:
        raise FitError(
            f"L({variable}) needs at least {need} runs on the loss frontier, found {len(x)}"
        )
    point = _fit_once(x, loss, irreducible, delta)
    theta = None
    if irreducible:  # bootstrap refits also start from the full-data optimum
        theta = np.array(
            [np.log(point["E"]), point["alpha"], point["alpha"] * np.log(point["x_c"])]
        )
    samples = optimize.bootstrap(
        lambda idx: _fit_once(x[idx], loss[idx], irreducible, delta, theta),
        optimize.resample_rows(len(x)), n_boot, seed,
    )  # fmt: skip
    return PowerLawFit(variable, **point, n_points=len(x),
                       intervals=optimize.intervals(samples, level))  # fmt: skip
