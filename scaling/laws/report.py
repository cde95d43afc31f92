"""The markdown report and fit.json written by `scaling fit`, both rendered from the summary
that scaling.laws.fit.run_fits returns."""

from __future__ import annotations

import json
import os

PARAM_ORDER = ("E", "A", "B", "alpha", "beta", "a", "b", "G", "x_c", "k_n", "k_d")


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


def render_markdown(summary: dict, figures: list[str] = ()) -> str:
    """The report: data, each fitted law with intervals, compute-optimal N and D per budget."""
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
    for variable, section in summary["power_laws"].items():
        note = ["Fitted on the loss frontier (runs beating every run of smaller "
                f"{variable}).", ""]  # fmt: skip
        lines += _section(f"L({variable})", section, level, note)
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    return "\n".join(lines)


def write_outputs(summary: dict, out_dir: str, figures: list[str] = ()) -> dict[str, str]:
    """Write fit.json and report.md into `out_dir`; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"fit": os.path.join(out_dir, "fit.json"), "report": os.path.join(out_dir, "report.md")}
    with open(paths["fit"], "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
    with open(paths["report"], "w", encoding="utf-8") as f:
        f.write(render_markdown(summary, figures))
    return paths
