"""`scaling fit --predict C1,C2 [--replicates FILE] [--measured FILE] [--emit-sweep FILE]`:
predictions at held-out budgets from approaches 1, 2 and 3, their prediction intervals, the
spec that runs the check, and (with --measured) how far each approach missed.

Writes prediction.json ({"fitted_budgets", "noise", "predictions": [{"budget", "approach",
"N_opt", "D_opt", "loss", "loss_interval", "measured": {...}}]}) and prediction.md to --out.
"""

from __future__ import annotations

import json
import os

import numpy as np

from scaling.errors import UserError
from scaling.laws import fit as fitting
from scaling.laws import predict, results

NAMES = {"1": "approach 1 (envelope)", "2": "approach 2 (IsoFLOP)", "3": "approach 3 (L(N, D))"}


def _noise(args, table, outcome) -> dict:
    reps = None
    if args.replicates:
        extra = results.load_results(args.replicates, n_col=args.n_col, d_col=args.d_col,
                                     c_col=args.c_col, loss_col=args.loss_col)  # fmt: skip
        reps = predict.replicate_noise(np.concatenate([table.n, extra.n]),
                                       np.concatenate([table.d, extra.d]),
                                       np.concatenate([table.loss, extra.loss]))  # fmt: skip
        if reps is None:
            raise UserError(
                f"--replicates {args.replicates}: no run repeats the N and D of "
                f"another run; rerun one point of the sweep with other seeds"
            )
        reps["source"] = args.replicates
    resid = None
    if outcome.parametric is not None:
        resid = predict.residual_noise(outcome.parametric, table.n, table.d, table.loss)
    return predict.combine_noise(reps, resid)


def _measured(args, records: list[dict]) -> None:
    rows = results.read_rows(args.measured)
    budget_col = "budget" if "budget" in rows[0][1] else None
    m = results.load_results(args.measured, n_col=args.n_col, d_col=args.d_col,
                             c_col=args.c_col, loss_col=args.loss_col,
                             budget_col=budget_col)  # fmt: skip
    predict.attach_measured(records, m.n, m.loss, m.budget if budget_col else m.c)


def run_check(args, table, outcome) -> dict:
    """Predictions at --predict, noise, measured runs; writes prediction.json/.md and the
    --emit-sweep spec. Returns the prediction summary."""
    fits = {"1": outcome.envelope, "2": outcome.isoflop, "3": outcome.parametric}
    noise = _noise(args, table, outcome)
    level = args.level
    records = predict.predictions(fits, args.predict, noise, level, args.seed)
    if not records:
        raise UserError("--predict: no approach could be fitted; see report.md for why")
    if args.measured:
        _measured(args, records)
    fitted = sorted({float(b) for b in table.budget}) if table.budget is not None else []
    summary = fitting.to_json_ready({"fitted_budgets": fitted, "level": level,
                                     "noise": noise, "predictions": records})  # fmt: skip
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "prediction.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, sort_keys=True, allow_nan=False)
        f.write("\n")
    with open(os.path.join(args.out, "prediction.md"), "w", encoding="utf-8") as f:
        f.write(render(summary))
    if args.emit_sweep:
        from scaling.laws import emit, sweep

        spec = sweep.load_spec(args.sweep_spec)
        emit.write_spec(
            emit.emit_spec(spec, records),
            args.emit_sweep,
            header=f"emitted by scaling fit --predict from {args.results}",
        )
    return summary


def _n(x) -> str:
    return f"{x / 1e3:.0f}K" if x < 1e6 else f"{x / 1e6:.2f}M"


def render(summary: dict) -> str:
    """prediction.md: a table per budget, then how far each approach missed."""
    noise, level = summary["noise"], summary["level"]
    lines = ["# Predictions at held-out budgets", "",
             f"Fitted budgets: {', '.join(f'{c:.3g}' for c in summary['fitted_budgets'])} FLOP.",
             f"Prediction intervals ({level:.0%}) add run-to-run noise sigma = "
             f"{noise['sigma']:.4f} nats (from the {noise['from']}, {noise['dof']} degrees of "
             "freedom, Student t) to each bootstrap replicate's prediction.", ""]  # fmt: skip
    if noise.get("replicates"):
        for g in noise["replicates"]["groups"]:
            lines.append(f"- replicated run N = {_n(g['N'])}, D = {g['D']:.3g}: losses "
                         + ", ".join(f"{v:.4f}" for v in g["losses"]))  # fmt: skip
    if noise.get("residuals"):
        lines.append(
            f"- approach 3's residual standard deviation: "
            f"{noise['residuals']['sigma']:.4f} ({noise['residuals']['dof']} dof)"
        )
    lines += ["", "| C (FLOP) | approach | N_opt | D_opt | loss | bootstrap | prediction "
              "interval | measured at N | loss | miss (nats, %) | inside | best N (loss) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in summary["predictions"]:
        m = r.get("measured")
        ci = r.get("loss_ci")
        cells = [f"{r['budget']:.3g}", NAMES[r["approach"]], _n(r["N_opt"]), f"{r['D_opt']:.3g}",
                 f"{r['loss']:.4f}", f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "—",
                 f"[{r['loss_interval'][0]:.3f}, {r['loss_interval'][1]:.3f}]"]  # fmt: skip
        if m:
            cells += [_n(m["N"]), f"{m['loss']:.4f}",
                      f"{m['miss_nats']:+.4f} ({m['miss_percent']:+.2f}%)",
                      "yes" if m["inside_interval"] else "**no**",
                      f"{_n(m['best_N'])} ({m['best_loss']:.4f})"]  # fmt: skip
        else:
            cells += ["—"] * 5
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + _verdicts(summary["predictions"]) + [""])


def _verdicts(records: list[dict]) -> list[str]:
    out = []
    for r in records:
        m = r.get("measured")
        if not m:
            continue
        where = "inside" if m["inside_interval"] else "outside"
        best = ("the measured best size is the one trained nearest the predicted N_opt"
                if m["best_is_predicted"] else
                f"the measured best size is {_n(m['best_N'])}, not {_n(m['N'])}, the one "
                f"trained nearest the predicted N_opt ({_n(r['N_opt'])})")  # fmt: skip
        out.append(f"- {NAMES[r['approach']]} at {r['budget']:.3g} FLOP: predicted "
                   f"{r['loss']:.4f}, measured {m['loss']:.4f} at N = {_n(m['N'])}: missed by "
                   f"{abs(m['miss_nats']):.4f} nats ({abs(m['miss_percent']):.2f}%), "
                   f"{where} the prediction interval; {best}.")  # fmt: skip
    return out
