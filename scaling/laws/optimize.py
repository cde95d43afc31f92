"""Shared fitting machinery: Huber loss, log-sum-exp, L-BFGS from many starts, the bootstrap.

Hoffmann et al. 2022 App. D.2 fit scaling laws by minimizing a Huber loss (delta = 1e-3) of
log-loss residuals with L-BFGS started from a grid of points, keeping the best optimum;
Besiroglu et al. 2024 ("Chinchilla Scaling: A replication attempt") redo it with bootstrap
confidence intervals. Every fitter in scaling/laws uses the pieces here.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Sequence

import numpy as np
import scipy.optimize
import threadpoolctl

from scaling.errors import UserError

HUBER_DELTA = 1e-3  # Hoffmann et al. 2022 App. D.2


class FitError(UserError, ValueError):
    """Data a fit cannot use (too few points, no curvature, ...); the message says which."""


def serial_blas(fn):
    """Run `fn` with one BLAS thread. scipy's L-BFGS-B makes many tiny BLAS calls; with
    OpenBLAS threads on a busy machine each costs milliseconds of synchronisation (20x slower
    fits measured on a shared 2-core host)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


def huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss of residuals `r` and its derivative: quadratic inside |r| <= delta."""
    a = np.abs(r)
    value = np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))
    return value, np.clip(r, -delta, delta)


def logsumexp_terms(terms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log sum_k exp(terms[..., k]) and its gradient (the softmax over k)."""
    top = np.max(terms, axis=-1, keepdims=True)
    expd = np.exp(terms - top)
    total = np.sum(expd, axis=-1, keepdims=True)
    return (top + np.log(total))[..., 0], expd / total


def grid(**axes: Sequence[float]) -> np.ndarray:
    """All combinations of the given axis values, one start per row, columns in axis order."""
    return np.array(list(itertools.product(*axes.values())), dtype=np.float64)


Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def minimize_from_starts(objective: Objective, starts: np.ndarray) -> tuple[np.ndarray, float]:
    """L-BFGS from every row of `starts`; the best optimum found and its objective value.

    Tolerances are tight because the Huber objective is tiny in absolute terms (Besiroglu
    et al. note that loose tolerances stop Hoffmann's fit early).
    """
    best_x, best_f = None, np.inf
    options = {"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12}
    for start in starts:
        with np.errstate(over="ignore", invalid="ignore"):
            res = scipy.optimize.minimize(
                objective, start, jac=True, method="L-BFGS-B", options=options
            )
        if np.isfinite(res.fun) and res.fun < best_f:
            best_x, best_f = res.x, float(res.fun)
    if best_x is None:
        raise FitError("no starting point led to a finite fit; check the data for outliers")
    return best_x, best_f


def best_starts(values: Callable[[np.ndarray], np.ndarray], starts: np.ndarray, k: int):
    """The `k` rows of `starts` with the lowest objective, evaluated on all rows at once."""
    with np.errstate(over="ignore", invalid="ignore"):
        f = values(starts)
    f = np.where(np.isfinite(f), f, np.inf)
    return starts[np.argsort(f, kind="stable")[:k]]


def resample_rows(n: int) -> Callable[[np.random.Generator], np.ndarray]:
    """Draw n row indices out of n with replacement (the ordinary bootstrap)."""
    return lambda rng: rng.integers(0, n, size=n)


def resample_within(groups: list[np.ndarray]) -> Callable[[np.random.Generator], np.ndarray]:
    """Resample rows with replacement inside each group (a stratified bootstrap)."""
    return lambda rng: np.concatenate([rng.choice(g, size=len(g)) for g in groups])


def bootstrap(
    fit: Callable[[np.ndarray], dict],
    draw: Callable[[np.random.Generator], np.ndarray],
    n_boot: int,
    seed: int,
) -> list[dict]:
    """Refit on `n_boot` resamples of the rows, `draw(rng)` giving each resample's indices.

    `fit(indices)` returns a dict of floats. Resamples come from one generator seeded with
    `seed`, so the result is a pure function of (data, n_boot, seed). A resample the fit
    rejects (FitError) is skipped.
    """
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_boot):
        idx = draw(rng)
        try:
            samples.append(fit(idx))
        except FitError:
            continue
    return samples


def intervals(samples: list[dict], level: float) -> dict[str, list[float]]:
    """Percentile intervals [lo, hi] at confidence `level` for every key of the samples."""
    if not samples:
        return {}
    tail = 100 * (1 - level) / 2
    out = {}
    for key in samples[0]:
        values = np.array([s[key] for s in samples], dtype=np.float64)
        lo, hi = np.nanpercentile(values, [tail, 100 - tail])
        out[key] = [float(lo), float(hi)]
    return out
