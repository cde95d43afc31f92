"""Scaling-curve figures, each written as PNG and SVG.

Figures are built on matplotlib's object API with the Agg canvas, so nothing touches pyplot's
global state or needs a display. SVG output is made reproducible (fixed hash salt, no date).
"""

from __future__ import annotations

import math
import os

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from scaling.laws import parametric
from scaling.laws.isoflop import IsoflopFit
from scaling.laws.powerlaw import PowerLawFit, lower_envelope
from scaling.laws.results import Results

LABELS = {"N": "parameters N", "D": "training tokens D", "C": "training compute C (FLOP)"}


def _figure() -> tuple[Figure, object]:
    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(True, which="major", alpha=0.3)
    return fig, ax


def _plain_loss_axis(ax) -> None:
    """Loss ticks as plain numbers (2.4, 3) rather than 2.4 x 10^0 on a log axis."""
    ax.yaxis.set_major_locator(MaxNLocator(6))  # losses often span less than a decade
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())


def _save(fig: Figure, out_dir: str, name: str) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": "scaling", "svg.fonttype": "none"}):
        for ext in ("png", "svg"):
            path = os.path.join(out_dir, f"{name}.{ext}")
            fig.savefig(path, dpi=90, metadata={"Date": None} if ext == "svg" else None)
            paths.append(path)
    return paths


def _span(x, pad: float = 1.5) -> np.ndarray:
    return np.geomspace(np.min(x) / pad, np.max(x) * pad, 200)


def plot_loss_vs(
    results: Results, variable: str, law: PowerLawFit | None, out_dir: str,
    fit3: parametric.ParametricFit | None = None,
) -> list[str]:  # fmt: skip
    """Loss against N, D or C, coloured by the other axis; the lower envelope, the fitted
    power law and (for C) approach 3's compute-optimal frontier."""
    x = {"N": results.n, "D": results.d, "C": results.c}[variable]
    colour = np.log10(results.n if variable == "C" else results.c)
    fig, ax = _figure()
    sc = ax.scatter(x, results.loss, c=colour, s=14, cmap="viridis", alpha=0.8)
    fig.colorbar(sc, ax=ax, label="log10 N" if variable == "C" else "log10 C")
    env = lower_envelope(x, results.loss)
    ax.plot(x[env], results.loss[env], "o", mfc="none", mec="k", ms=7, label="frontier runs")
    grid = _span(x)
    if law is not None:
        p = law.params()
        ax.plot(grid, law(grid), "k-", label=f"L({variable}) fit, α={p['alpha']:.3f}")
    if variable == "C" and fit3 is not None:
        opt = parametric.compute_optimal(fit3.values(), grid)["loss"]
        ax.plot(grid, opt, "r--", label="approach 3 compute-optimal")
    ax.set(xscale="log", yscale="log", xlabel=LABELS[variable], ylabel="loss")
    _plain_loss_axis(ax)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, f"loss_vs_{variable}")


def plot_isoflops(results: Results, fit: IsoflopFit, out_dir: str,
                  fit3: parametric.ParametricFit | None = None, check: dict | None = None,
                  measured: Results | None = None) -> list[str]:  # fmt: skip
    """Each IsoFLOP profile's runs, its parabola in log N and the minimum (approach 2); with
    `fit3`, approach 3's L(N, C/6N) along the same budget, dashed; with `check` (the
    prediction summary) each approach's predicted optimum at the held-out budgets with its
    prediction interval, and the `measured` runs there."""
    fig, ax = _figure()
    if check:
        _plot_check(ax, check, measured, fit3)
    colours = matplotlib.colormaps["plasma"](np.linspace(0, 0.85, len(fit.profiles)))
    for prof, colour in zip(fit.profiles, colours, strict=True):
        n = results.n[prof.index]
        ax.scatter(n, results.loss[prof.index], s=14, color=colour, label=f"C={prof.budget:.2g}")
        grid = np.geomspace(n.min(), n.max(), 100)
        ax.plot(grid, np.polyval(prof.coef, np.log(grid)), color=colour, lw=1)
        ax.plot(prof.n_opt, prof.loss_opt, "k*", ms=9)
        if fit3 is not None:
            d = prof.budget / (6 * grid)
            ax.plot(grid, parametric.predict_loss(fit3.values(), grid, d), color=colour,
                    lw=1, ls="--")  # fmt: skip
    if fit3 is not None:
        ax.plot([], [], "k--", lw=1, label="approach 3 L(N, C/6N)")
    ax.set(xscale="log", xlabel=LABELS["N"], ylabel="loss",
           title=f"IsoFLOP profiles: N_opt ∝ C^{fit.a:.3f}")  # fmt: skip
    if check:  # beside the axes: inside, the legend hid runs of the smallest budget
        fig.set_size_inches(8.0, 4.2)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7, ncol=2, loc="best")
    return _save(fig, out_dir, "isoflops")


MARKERS = {"1": ("v", "tab:green"), "2": ("s", "k"), "3": ("D", "tab:red")}


def _plot_check(ax, check: dict, measured: Results | None, fit3) -> None:
    """Predicted optima (with prediction intervals) and measured runs at held-out budgets."""
    for c in sorted({r["budget"] for r in check["predictions"]}):
        if measured is not None:
            at = np.abs(measured.c / c - 1) < 0.05
            order = np.argsort(measured.n[at])
            ax.plot(measured.n[at][order], measured.loss[at][order], "o-", color="tab:blue",
                    lw=1, ms=6, mfc="none", label=f"C={c:.2g} measured (held out)")  # fmt: skip
        if fit3 is not None:
            lo = min(r["N_opt"] for r in check["predictions"]) / 2.5
            grid = np.geomspace(lo, lo * 6.25, 100)
            ax.plot(grid, parametric.predict_loss(fit3.values(), grid, c / (6 * grid)),
                    color="tab:blue", lw=1, ls="--")  # fmt: skip
        for r in check["predictions"]:
            if r["budget"] != c:
                continue
            marker, colour = MARKERS[r["approach"]]
            lo_l, hi_l = r["loss_interval"]
            ax.errorbar(r["N_opt"], r["loss"], yerr=[[r["loss"] - lo_l], [hi_l - r["loss"]]],
                        fmt=marker, color=colour, ms=5, capsize=3, lw=1,
                        label=f"approach {r['approach']} prediction")  # fmt: skip


def _smooth(y: np.ndarray, width: int = 5) -> np.ndarray:
    """Trailing moving average over `width` logged points (the first points average fewer)."""
    c = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(1, len(y) + 1)
    k = np.minimum(i, width)
    return (c[i] - c[i - k]) / k


def plot_learning_curves(curves: dict[str, list[dict]], out_dir: str,
                         flops_per_step: dict[str, float] | None = None,
                         groups: dict[str, float] | None = None) -> list[str]:  # fmt: skip
    """Training loss (lines, a 5-point moving average) and eval loss (markers) of every run.
    x: training compute (FLOP) when `flops_per_step` covers every run (a sweep's table gives
    6 N x tokens per step), else tokens when every run logs them, else steps. `groups`
    (e.g. each run's IsoFLOP budget) colours runs by group instead of by name."""
    fig, ax = _figure()
    if flops_per_step and all(name in flops_per_step for name in curves):
        key, xlabel, scale = "step", LABELS["C"], flops_per_step
    else:
        use_tokens = all(any("tokens" in r for r in rows) for rows in curves.values())
        key = xlabel = "tokens" if use_tokens else "step"
        scale = dict.fromkeys(curves, 1.0)
    if groups and all(name in groups for name in curves):
        keys = sorted(set(groups.values()))
        cmap = matplotlib.colormaps["plasma"](np.linspace(0, 0.85, len(keys)))
        colour_of = {name: cmap[keys.index(groups[name])] for name in curves}
        label_of = {name: f"C={groups[name]:.2g}" for name in curves}
    else:
        cmap = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, max(1, len(curves))))
        colour_of = dict(zip(sorted(curves), cmap, strict=False))
        label_of = {name: name for name in curves}
    shown = set()
    order = sorted(curves, key=lambda n: (groups.get(n, 0.0) if groups else 0.0, n))
    for name in order:
        rows = curves[name]
        train = [(r[key] * scale[name], r["loss"]) for r in rows if key in r and "loss" in r]
        evals = [(r[key] * scale[name], r["eval_loss"]) for r in rows
                 if key in r and "eval_loss" in r]  # fmt: skip
        label = label_of[name] if label_of[name] not in shown else None
        shown.add(label_of[name])
        if train:
            x, y = (np.array(v) for v in zip(*train, strict=True))
            ax.plot(x, _smooth(y), color=colour_of[name], lw=1, alpha=0.8, label=label)
        if evals:
            ax.plot(*zip(*evals, strict=True), "o", color=colour_of[name], ms=3)
    ax.set(xscale="log", yscale="log", xlabel=xlabel,
           ylabel="loss (lines: train, smoothed; o: eval)")  # fmt: skip
    _plain_loss_axis(ax)
    if len(shown) <= 16:
        ax.legend(fontsize=5 if len(shown) > 8 else 7, ncol=2 if len(shown) > 8 else 1)
    return _save(fig, out_dir, "learning_curves")


def _band(samples: list, curve, grid, level: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Pointwise percentile band of `curve(sample, grid)` over bootstrap samples."""
    if len(samples) < 2:
        return None
    tail = 100 * (1 - level) / 2
    values = np.array([curve(s, grid) for s in samples])
    return tuple(np.nanpercentile(values, [tail, 100 - tail], axis=0))


def plot_optimal_allocation(
    iso: IsoflopFit | None, fit3: parametric.ParametricFit | None, out_dir: str,
    c_range: tuple[float, float], env=None,
) -> list[str]:  # fmt: skip
    """N_opt against C from approach 2 (parabola minima and their line), approach 3 (the
    parametric law's optimum) and approach 1 (`env`: the learning curves' lower envelope and
    its line), each with its bootstrap band: the comparison of a."""
    fig, ax = _figure()
    grid = np.geomspace(c_range[0] / 2, c_range[1] * 100, 200)
    if env is not None:
        ok = np.isfinite(env.env_n)
        ax.plot(env.grid[ok], env.env_n[ok], ".", color="tab:green", ms=3,
                label="lower envelope of learning curves")  # fmt: skip
        ax.plot(grid, env.k_n * grid**env.a, "-", color="tab:green",
                label=f"approach 1: a = {env.a:.3f}")  # fmt: skip
        band = _band(env.samples, lambda s, g: s["k_n"] * g ** s["a"], grid, env.level)
        if band is not None:
            ax.fill_between(grid, *band, color="tab:green", alpha=0.12, lw=0)
    if iso is not None:
        c = np.array([p.budget for p in iso.profiles])
        ax.plot(c, [p.n_opt for p in iso.profiles], "ks", ms=6, label="IsoFLOP minima")
        ax.plot(grid, iso.k_n * grid**iso.a, "k-", label=f"approach 2: a = {iso.a:.3f}")
        band = _band(iso.samples, lambda s, g: s["k_n"] * g ** s["a"], grid, iso.level)
        if band is not None:
            ax.fill_between(grid, *band, color="k", alpha=0.12, lw=0)
    if fit3 is not None:
        ax.plot(grid, parametric.compute_optimal(fit3.values(), grid)["N_opt"], "r--",
                label=f"approach 3: a = {fit3.a:.3f}")  # fmt: skip
        band = _band(fit3.samples, lambda s, g: parametric.compute_optimal(
            [s[k] for k in parametric.PARAMS], g)["N_opt"], grid, fit3.level)  # fmt: skip
        if band is not None:
            ax.fill_between(grid, *band, color="r", alpha=0.12, lw=0)
    ax.axvspan(*c_range, color="b", alpha=0.06, label="compute of the runs")
    ax.set(xscale="log", yscale="log", xlabel=LABELS["C"], ylabel="compute-optimal N",
           title="N_opt ∝ C^a (bands: bootstrap intervals)")  # fmt: skip
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "optimal_allocation")


def plot_lr_transfer(grid: list[dict], best: list[dict], out_dir: str) -> list[str]:
    """Learning-rate transfer (scaling/laws/transfer.py): one panel per variant, loss against
    peak lr with a line per width and a dashed line at each width's best rate."""
    variants = list(dict.fromkeys(r["variant"] for r in grid))
    widths = sorted({r["d_model"] for r in grid})
    fig = Figure(figsize=(4.2 * len(variants), 3.8), layout="constrained")
    axes = fig.subplots(1, len(variants), sharey=True, squeeze=False)[0]
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.85, len(widths)))
    finite = [r["loss"] for r in grid if math.isfinite(r["loss"])]
    top = min(max(finite), min(finite) + 1.5)  # diverged runs drawn at the top edge
    titles = {"mup": "μP (base width 64)", "sp": "standard parameterization"}
    for ax, variant in zip(axes, variants, strict=True):
        for width, colour in zip(widths, colours, strict=True):
            rows = sorted((r for r in grid if r["variant"] == variant and r["d_model"] == width),
                          key=lambda r: r["lr"])  # fmt: skip
            lrs = [r["lr"] for r in rows]
            losses = [min(r["loss"], top) if math.isfinite(r["loss"]) else top for r in rows]
            ax.plot(lrs, losses, "o-", color=colour, ms=4, label=f"d_model = {width}")
            b = next(b for b in best if b["variant"] == variant and b["d_model"] == width)
            ax.axvline(b["best_lr"], color=colour, ls="--", lw=1)
        ax.set(xscale="log", xlabel="peak learning rate", title=titles.get(variant, variant))
        ax.grid(True, alpha=0.3)
        _plain_loss_axis(ax)
        ax.legend(fontsize=8)
    axes[0].set_ylim(min(finite) - 0.05, top + 0.05)  # shared by every panel
    axes[0].set_ylabel("validation loss (nats/token)")
    return _save(fig, out_dir, "lr_transfer")


def write_figures(table: Results, outcome, out_dir: str, results_path: str,
                  runs: str | None = None, check: dict | None = None,
                  measured: Results | None = None) -> list[str]:
    """Every figure of `scaling fit` for a FitOutcome (scaling/laws/fit.py) into `out_dir`:
    loss against N, D and C, the IsoFLOP profiles (with a --predict check and the runs
    measured at its budgets), the optimal allocation, and the learning curves of the run
    directories under `runs`. Returns the PNG file names."""
    from scaling.laws import results

    paths = []
    for variable in ("N", "D", "C"):
        law = outcome.power_laws.get(variable)
        paths += plot_loss_vs(table, variable, law, out_dir, outcome.parametric)
    if outcome.isoflop is not None:
        paths += plot_isoflops(table, outcome.isoflop, out_dir, outcome.parametric,
                               check, measured)  # fmt: skip
    if outcome.isoflop is not None or outcome.parametric is not None:
        c_range = (float(table.c.min()), float(table.c.max()))
        paths += plot_optimal_allocation(outcome.isoflop, outcome.parametric, out_dir,
                                         c_range, outcome.envelope)  # fmt: skip
    if runs:
        curves = {name: results.load_metrics(path)
                  for name, path in results.find_runs(runs).items()}  # fmt: skip
        if curves:
            flops, groups = results.run_scales(results_path)
            paths += plot_learning_curves(curves, out_dir, flops, groups)
    return [os.path.basename(p) for p in paths if p.endswith(".png")]
