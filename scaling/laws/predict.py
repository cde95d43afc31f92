"""Predictions at held-out compute budgets, with prediction intervals that include run-to-run
noise, and their comparison with runs made there.

A bootstrap interval on the predicted loss covers only the uncertainty of the fitted law; a
new run at that budget also differs from the law's mean by its own noise (seed: the model's
initialization and the data order). The prediction interval adds both: each bootstrap
replicate's predicted loss plus sigma * t, where sigma is the run-to-run standard deviation
and t a Student-t draw with sigma's degrees of freedom (sigma from 3 seeds has 2, so its
tails are wide, as they should be). This is the usual prediction interval of regression
(e.g. Hastie, Tibshirani & Friedman 2009 §7.11 for the bootstrap; Student 1908 for t).

sigma is the larger of two estimates, each with its degrees of freedom: the standard
deviation of replicated runs (the same N and D with other seeds) and the residual standard
deviation of approach 3's fit (its lack of fit, n - 5 degrees of freedom).
"""

from __future__ import annotations

import math

import numpy as np

from scaling.laws import parametric
from scaling.laws.optimize import FitError

DRAWS = 20000  # Monte-Carlo draws per prediction interval


def replicate_noise(n, d, loss, rel_tol: float = 1e-6) -> dict | None:
    """Pooled standard deviation of runs sharing (N, D): {"sigma", "dof", "groups"}; None
    when no configuration was run more than once."""
    n, d, loss = (np.asarray(x, float) for x in (n, d, loss))
    keys = {}
    for i, (ni, di) in enumerate(zip(n, d, strict=True)):
        key = next((k for k in keys if abs(k[0] / ni - 1) < rel_tol and abs(k[1] / di - 1)
                    < rel_tol), (ni, di))  # fmt: skip
        keys.setdefault(key, []).append(i)
    groups = [idx for idx in keys.values() if len(idx) > 1]
    if not groups:
        return None
    ss = sum(float(np.sum((loss[g] - loss[g].mean()) ** 2)) for g in groups)
    dof = sum(len(g) - 1 for g in groups)
    return {"sigma": math.sqrt(ss / dof), "dof": dof,
            "groups": [{"N": float(n[g[0]]), "D": float(d[g[0]]), "losses": loss[g].tolist()}
                       for g in groups]}  # fmt: skip


def residual_noise(fit3: parametric.ParametricFit, n, d, loss) -> dict:
    """Residual standard deviation of approach 3's law on its runs (n - 5 degrees of
    freedom)."""
    resid = np.asarray(loss, float) - parametric.predict_loss(fit3.values(), n, d)
    dof = len(resid) - 5
    if dof < 1:
        raise FitError(f"the residual noise needs more than 5 runs, got {len(resid)}")
    return {"sigma": float(math.sqrt(np.sum(resid**2) / dof)), "dof": dof}


def combine_noise(replicates: dict | None, residuals: dict | None) -> dict:
    """The larger of the two estimates (each keeps its own degrees of freedom), both
    recorded."""
    candidates = [(name, est) for name, est in (("replicates", replicates),
                                                ("residuals", residuals)) if est]  # fmt: skip
    if not candidates:
        raise FitError(
            "no estimate of run-to-run noise: give replicated runs (--replicates) "
            "or enough runs for approach 3's residuals"
        )
    name, est = max(candidates, key=lambda c: c[1]["sigma"])
    return {"sigma": est["sigma"], "dof": est["dof"], "from": name,
            "replicates": replicates, "residuals": residuals}  # fmt: skip


def prediction_interval(point: float, replicates: list[float], sigma: float, dof: int,
                        level: float, seed: int) -> list[float]:  # fmt: skip
    """Percentile interval of (a bootstrap replicate's prediction, or the point prediction
    when there are none) + sigma * Student-t(dof)."""
    rng = np.random.default_rng(seed)
    base = np.asarray(replicates if len(replicates) else [point], float)
    draws = rng.choice(base, DRAWS) + sigma * rng.standard_t(dof, DRAWS)
    tail = 100 * (1 - level) / 2
    return [float(v) for v in np.percentile(draws, [tail, 100 - tail])]


def _record(approach: str, pred: dict, losses: list[float], noise: dict, level: float,
            seed: int) -> dict:  # fmt: skip
    out = {"budget": pred["C"], "approach": approach, "N_opt": pred["N_opt"],
           "D_opt": pred["D_opt"], "loss": pred["loss"]}  # fmt: skip
    for key in ("N_opt_ci", "D_opt_ci", "loss_ci"):
        if key in pred:
            out[key] = pred[key]
    out["loss_interval"] = prediction_interval(pred["loss"], losses, noise["sigma"],
                                               noise["dof"], level, seed)  # fmt: skip
    return out


def predictions(fits: dict, budgets, noise: dict, level: float, seed: int) -> list[dict]:
    """One record per (budget, approach) for the fits present: fits = {"1": EnvelopeFit,
    "2": IsoflopFit, "3": ParametricFit}, each possibly None."""
    out = []
    for c in budgets:
        for approach in ("1", "2", "3"):
            fit = fits.get(approach)
            if fit is None:
                continue
            if approach == "3":
                pred = parametric.predict_budget(fit, c)
                losses = [
                    float(parametric.compute_optimal([s[k] for k in parametric.PARAMS], c)["loss"])
                    for s in fit.samples
                ]
            else:
                pred = fit.predict(c)
                losses = [s["k_l"] * c ** -s["gamma_l"] for s in fit.samples]
            out.append(_record(approach, pred, losses, noise, level, seed))
    return out


def attach_measured(records: list[dict], n, loss, budget, rel_tol: float = 0.05) -> None:
    """Add "measured" to each record with runs at its budget (within `rel_tol`): the run
    nearest the predicted N_opt (in log N) and the best run, and how far the prediction
    missed (measured - predicted, in nats and percent of the prediction)."""
    n, loss, budget = (np.asarray(x, float) for x in (n, loss, budget))
    for r in records:
        at = np.flatnonzero(np.abs(budget / r["budget"] - 1) < rel_tol)
        if not len(at):
            continue
        near = at[np.argmin(np.abs(np.log(n[at] / r["N_opt"])))]
        best = at[np.argmin(loss[at])]
        lo, hi = r["loss_interval"]
        r["measured"] = {
            "N": float(n[near]), "loss": float(loss[near]),
            "best_N": float(n[best]), "best_loss": float(loss[best]),
            "miss_nats": float(loss[near] - r["loss"]),
            "miss_percent": float(100 * (loss[near] - r["loss"]) / r["loss"]),
            "inside_interval": bool(lo <= loss[near] <= hi),
            "best_is_predicted": bool(near == best), "runs": len(at),
        }  # fmt: skip
