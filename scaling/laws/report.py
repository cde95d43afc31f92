"""The markdown report and fit.json written by `scaling fit`, both rendered from the summary
that scaling.laws.fit.run_fits returns."""

from __future__ import annotations

import json
import os

PARAM_ORDER = ("E", "A", "B", "alpha", "beta", "a", "b", "G", "x_c", "k_n", "k_d", "k_l", "gamma_l")


def _num(x) -> str:
    if x is None:
        return "—"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-2):
        return f"{x:.3e}"
    return f"{x:.4g}"


def _ci(intervals: dict, key: str) -> str:
    bounds = intervals.get(key)
    return f"[{_num(bounds[0])}, {_num(bounds[1])}]" if bounds else "—"


def _param_table(section: dict, level: float) -> list[str]:
    params, intervals = section["params"], section.get("intervals", {})
    lines = [f"| parameter | estimate | {level:.0%} interval |", "|---|---|---|"]
    for key in sorted(params, key=lambda k: PARAM_ORDER.index(k) if k in PARAM_ORDER else 99):
        lines.append(f"| {key} | {_num(params[key])} | {_ci(intervals, key)} |")
    return lines


def _section(title: str, section: dict, level: float, notes: list[str] = ()) -> list[str]:
    lines = [f"## {title}", ""]
    if "error" in section:
        return lines + [f"Not fitted: {section['error']}", ""]
    lines += [f"`{section['law']}`", "", *notes, *_param_table(section, level), ""]
    return lines


def _predictions(section: dict, level: float) -> list[str]:
    if "error" in section:
        return []
    head = ["## Compute-optimal allocation (approach 3)", "",
            f"| C (FLOP) | N_opt | {level:.0%} interval | D_opt | {level:.0%} interval | "
            f"D/N | loss | {level:.0%} interval |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    rows = [
        f"| {_num(p['C'])} | {_num(p['N_opt'])} | {_ci(p, 'N_opt_ci')} | {_num(p['D_opt'])} | "
        f"{_ci(p, 'D_opt_ci')} | {p['D_opt'] / p['N_opt']:.1f} | {_num(p['loss'])} | "
        f"{_ci(p, 'loss_ci')} |"
        for p in section["predictions"]
    ]
    return head + rows + [""]


def _pm(value, bounds) -> str:
    return f"{_num(value)} [{_num(bounds[0])}, {_num(bounds[1])}]" if bounds else _num(value)


def _headline(summary: dict, level: float) -> list[str]:
    """The fitted law and the two estimates of a in a few lines, before the detail."""
    a3, a2, cmp_ = summary["approach3"], summary["approach2"], summary.get("comparison") or {}
    lines = ["## Summary", ""]
    if "error" not in a3:
        p, ci = a3["params"], a3["intervals"]
        lines += [f"Fitted law (approach 3): **L(N, D) = {_num(p['E'])} + {_num(p['A'])} / "
                  f"N^{p['alpha']:.3f} + {_num(p['B'])} / D^{p['beta']:.3f}** (nats/token; "
                  f"N parameters, D training tokens), so N_opt ∝ C^a with "
                  f"a = β/(α+β) = {_pm(p['a'], ci.get('a'))}.", ""]  # fmt: skip
    if "error" not in a2:
        p, ci = a2["params"], a2["intervals"]
        lines += [f"Approach 2 (a parabola per IsoFLOP budget, {len(a2['profiles'])} budgets): "
                  f"N_opt = {_num(p['k_n'])} · C^a with a = {_pm(p['a'], ci.get('a'))}; "
                  f"D_opt ∝ C^b with b = {_pm(p['b'], ci.get('b'))}.", ""]  # fmt: skip
    a1 = summary.get("approach1")
    if a1 and "error" not in a1:
        p, ci = a1["params"], a1["intervals"]
        lines += [f"Approach 1 (lower envelope of {a1['curves']} learning curves, "
                  f"{len(a1['envelope_sizes'])} sizes lead it): a = {_pm(p['a'], ci.get('a'))}.",
                  ""]  # fmt: skip
    if cmp_:
        verdict = "overlap" if cmp_.get("intervals_overlap") else "do not overlap"
        inside = (" and each estimate lies inside the other's interval"
                  if cmp_.get("each_inside_other") else "")  # fmt: skip
        lines += [f"Approaches 2 and 3's estimates of a differ by {cmp_['difference']:+.3f}; their "
                  f"{level:.0%} intervals {verdict}{inside}.", ""]  # fmt: skip
    return lines


def _limits(summary: dict) -> list[str]:
    """What the runs span, so that a reader sees how far each prediction extrapolates."""
    data = summary.get("data")
    if not data:
        return []
    lines = ["## Limits of the data", "",
             f"- {summary['n_runs']} runs: N {_num(data['N'][0])} to {_num(data['N'][1])} "
             f"parameters, D {_num(data['D'][0])} to {_num(data['D'][1])} tokens "
             f"({data['tokens_per_param'][0]:.2g} to {data['tokens_per_param'][1]:.2g} tokens "
             f"per parameter), C {_num(data['C'][0])} to {_num(data['C'][1])} FLOP.",
             ]  # fmt: skip
    c_max = data["C"][1]
    beyond = [c for c in summary["settings"]["budgets"] if c > 1.5 * c_max]
    if beyond:
        lines.append(
            f"- Predictions at {', '.join(_num(c) for c in beyond)} FLOP extrapolate "
            f"up to {max(beyond) / c_max:.0f}x beyond the largest run; their intervals "
            "cover only the bootstrap's sampling noise, not a change of regime."
        )
    a2 = summary["approach2"]
    if "error" not in a2:
        lines.append(f"- Approach 2 rests on {len(a2['profiles'])} parabola minima, so its "
                     "line has few degrees of freedom; a budget whose minimum sits near the "
                     "edge of its sizes pulls it most.")  # fmt: skip
    a3 = summary["approach3"]
    if "error" not in a3 and a3.get("n_points", 0) < 50:
        lines.append(
            f"- Approach 3 fits 5 parameters to {a3['n_points']} runs: E, A and B can "
            "trade off against one another, so read their intervals before their "
            "point values."
        )
    return lines + [""]


def _approach2_tables(section: dict, level: float) -> list[str]:
    if "error" in section:
        return []
    lines = []
    if "bootstrap_fits" in section:
        lines += [f"{section['bootstrap_fits']} bootstrap resamples gave a fit (resampling runs "
                  "within each budget; a resample whose parabola lost its interior minimum "
                  "has no N_opt and is left out).", ""]  # fmt: skip
    lines += ["| budget C (FLOP) | runs | N_opt (parabola minimum) | D_opt | D/N | loss |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {_num(p['C'])} | {p['runs']} | {_num(p['N_opt'])} | {_num(p['D_opt'])} | "
              f"{p['D_opt'] / p['N_opt']:.1f} | {p['loss_opt']:.4f} |"
              for p in section["profiles"]]  # fmt: skip
    lines += ["", "Compute-optimal allocation (approach 2):", "",
              f"| C (FLOP) | N_opt | {level:.0%} interval | D_opt | {level:.0%} interval |",
              "|---|---|---|---|---|"]  # fmt: skip
    lines += [
        f"| {_num(p['C'])} | {_num(p['N_opt'])} | {_ci(p, 'N_opt_ci')} | "
        f"{_num(p['D_opt'])} | {_ci(p, 'D_opt_ci')} |"
        for p in section["predictions"]
    ]
    return lines + [""]


def _approach1(section: dict | None, level: float) -> list[str]:
    if not section:
        return []
    notes = []
    if "error" not in section:
        c_lo, c_hi = section["C_range"]
        notes = [f"Lowest loss over {section['curves']} runs' logged evaluations at "
                 f"{section['envelope_points']} FLOP values from {_num(c_lo)} to {_num(c_hi)}; "
                 f"runs leading it: N = {', '.join(_num(n) for n in section['envelope_sizes'])}. "
                 f"Caveat: {section['caveat']}.", ""]  # fmt: skip
    lines = _section("Approach 1: lower envelope of learning curves", section, level, notes)
    if "error" in section:
        return lines
    lines += [f"| C (FLOP) | N_opt | {level:.0%} interval | D_opt | loss | {level:.0%} interval |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {_num(p['C'])} | {_num(p['N_opt'])} | {_ci(p, 'N_opt_ci')} | "
              f"{_num(p['D_opt'])} | {_num(p['loss'])} | {_ci(p, 'loss_ci')} |"
              for p in section["predictions"]]  # fmt: skip
    return lines + [""]


def _check(check: dict | None, figures: list[str]) -> list[str]:
    """With `scaling fit --predict`: each approach's prediction at the held-out budgets, the
    runs measured there, and the IsoFLOP figure that shows both."""
    if not check:
        return []
    level = check["level"]
    lines = ["## Held-out check ([prediction.md](prediction.md))", "",
             f"| C (FLOP) | approach | N_opt | predicted loss | {level:.0%} prediction interval "
             "| measured at N | loss | miss | inside |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in check["predictions"]:
        m = r.get("measured")
        lo, hi = r["loss_interval"]
        cells = [_num(r["budget"]), f"approach {r['approach']}", _num(r["N_opt"]),
                 f"{r['loss']:.4f}", f"[{lo:.4f}, {hi:.4f}]"]  # fmt: skip
        cells += ([_num(m["N"]), f"{m['loss']:.4f}",
                   f"{m['miss_nats']:+.4f} ({m['miss_percent']:+.2f}%)",
                   "yes" if m["inside_interval"] else "**no**"] if m else ["—"] * 4)  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if "isoflops.png" in figures:
        lines += ["![IsoFLOP profiles with each approach's predicted optimum at the held-out "
                  "budgets (error bars: prediction intervals) and the runs measured there]"
                  "(isoflops.png)", ""]  # fmt: skip
    return lines


def render_markdown(summary: dict, figures: list[str] = (), check: dict | None = None) -> str:
    """The report: data, each fitted law with intervals, compute-optimal N and D per budget;
    with `check` (scaling fit --predict's summary) the held-out predictions and their
    measurement."""
    s = summary["settings"]
    level = s["level"]
    a3 = summary["approach3"]
    lines = [
        "# Scaling-law fit", "",
        f"- results: `{summary['source']}` ({summary['n_runs']} runs"
        + (f", {summary['dropped_highest_loss']} highest-loss runs dropped"
           if summary.get("dropped_highest_loss") else "") + ")",
        f"- Huber δ = {s['huber_delta']:g} on log loss, L-BFGS from a grid of starts; "
        f"{s['bootstrap']} bootstrap resamples, seed {s['seed']}, {level:.0%} percentile intervals",
        "",
    ]  # fmt: skip
    lines += _headline(summary, level) + _check(check, figures) + _limits(summary)
    notes = []
    if "error" not in a3:
        starts = (f"all {a3['grid_points']}" if a3["lbfgs_starts"] == a3["grid_points"]
                  else f"the {a3['lbfgs_starts']} best of {a3['grid_points']}")  # fmt: skip
        notes = [f"Fitted on {a3['n_points']} runs; L-BFGS from {starts} grid starting points; "
                 f"{a3['bootstrap_fits']} bootstrap refits. a = β/(α+β) is the exponent of "
                 "N_opt ∝ C^a (Chinchilla eq. 4).", ""]  # fmt: skip
    lines += _section("Approach 3: parametric L(N, D)", a3, level, notes)
    lines += _predictions(a3, level)
    lines += _section("Approach 2: IsoFLOP profiles", summary["approach2"], level)
    lines += _approach2_tables(summary["approach2"], level)
    lines += _approach1(summary.get("approach1"), level)
    laws = summary["power_laws"]  # N, D, C in that order (fit.json stores keys sorted)
    order = {"N": 0, "D": 1, "C": 2}
    for variable, section in sorted(laws.items(), key=lambda kv: order.get(kv[0], 3)):
        note = ["Fitted on the loss frontier (runs beating every run of smaller "
                f"{variable}).", ""]  # fmt: skip
        lines += _section(f"L({variable})", section, level, note)
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def write_outputs(summary: dict, out_dir: str, figures: list[str] = (),
                  check: dict | None = None) -> dict[str, str]:  # fmt: skip
    """Write fit.json and report.md into `out_dir`; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"fit": os.path.join(out_dir, "fit.json"), "report": os.path.join(out_dir, "report.md")}
    with open(paths["fit"], "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
    with open(paths["report"], "w", encoding="utf-8") as f:
        f.write(render_markdown(summary, figures, check))
    return paths
