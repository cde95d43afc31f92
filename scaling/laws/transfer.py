"""Learning-rate transfer across width (Yang et al. 2022, Tensor Programs V, Figure 1).

Reads the results table of a sweep with `lrs` and `variants` (configs/sweeps/
gpt-cpu-mup-transfer.yaml): one run per (variant, width, peak learning rate). For every
(variant, width) the best rate is the minimum of a parabola in log lr through the lowest loss
and its two neighbours (the grid point itself when the lowest loss sits at the grid's edge).
Under μP the best rate should not depend on width; under the standard parameterization it
moves. Writes transfer.json (the data and the optima) and the figure lr_transfer.png/.svg.

    python -m scaling.laws.transfer --results runs/mup-transfer/results.csv \\
        --out docs/laws/mup-transfer
"""

from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np

from scaling.errors import UserError
from scaling.laws.results import ResultsError, read_rows

COLUMNS = ("variant", "d_model", "lr")


def load_grid(path: str, loss_col: str = "best_eval_loss") -> list[dict]:
    """Rows (variant, d_model, lr, loss) of a transfer sweep; a diverged run's loss is nan."""
    rows = read_rows(path)
    missing = [c for c in (*COLUMNS, loss_col) if c not in rows[0][1]]
    if missing:
        raise ResultsError(f"{path}: no column {missing[0]!r}; expected a `scaling sweep` "
                           f"results table of a spec with lrs and variants")
    out = []
    for line, row in rows:
        try:
            loss = float(row[loss_col]) if row[loss_col] not in ("", None) else math.nan
            out.append({"variant": str(row["variant"]) or "default",
                        "d_model": int(float(row["d_model"])), "lr": float(row["lr"]),
                        "loss": loss if math.isfinite(loss) else math.nan})  # fmt: skip
        except (TypeError, ValueError):
            raise ResultsError(f"{path} line {line}: d_model, lr and {loss_col} must be "
                               f"numbers") from None
    return out


def best_lr(lrs, losses) -> tuple[float, bool]:
    """(the loss-minimizing rate, whether it is interior to the grid). Interior: the vertex
    of the parabola in log lr through the best point and its neighbours."""
    lrs, losses = np.asarray(lrs, float), np.asarray(losses, float)
    order = np.argsort(lrs)
    lrs, losses = lrs[order], np.where(np.isfinite(losses[order]), losses[order], np.inf)
    i = int(np.argmin(losses))
    if i == 0 or i == len(lrs) - 1 or not np.all(np.isfinite(losses[i - 1:i + 2])):
        return float(lrs[i]), False
    x = np.log(lrs[i - 1:i + 2])
    p2, p1, _ = np.polyfit(x, losses[i - 1:i + 2], 2)
    vertex = -p1 / (2 * p2) if p2 > 0 else x[1]
    return float(np.exp(np.clip(vertex, x[0], x[2]))), True


def optima(grid: list[dict]) -> list[dict]:
    """Per (variant, width): the best rate and the loss there. Each (variant, width) needs
    3+ distinct rates, each run once (one token budget), or the table is not an LR sweep."""
    out = []
    for variant in dict.fromkeys(r["variant"] for r in grid):
        for width in sorted({r["d_model"] for r in grid if r["variant"] == variant}):
            rows = [r for r in grid if r["variant"] == variant and r["d_model"] == width]
            lrs = [r["lr"] for r in rows]
            if len(set(lrs)) < 3 or len(set(lrs)) != len(lrs):
                raise ResultsError(
                    f"{variant} d_model={width}: {len(lrs)} runs at {len(set(lrs))} distinct "
                    "learning rates; a transfer analysis needs 3+ rates per width, each run "
                    "once (the results of a sweep with lrs: [...] and one token budget)")

            lr, interior = best_lr([r["lr"] for r in rows], [r["loss"] for r in rows])
            losses = [r["loss"] for r in rows if math.isfinite(r["loss"])]
            out.append({"variant": variant, "d_model": width, "best_lr": lr,
                        "interior": interior, "best_loss": min(losses) if losses else None})
    return out


def shifts(best: list[dict]) -> dict:
    """Per variant: log2 of best lr at the widest width over the narrowest (0 = transfer)."""
    out = {}
    for variant in dict.fromkeys(b["variant"] for b in best):
        rows = sorted((b for b in best if b["variant"] == variant), key=lambda b: b["d_model"])
        if len(rows) >= 2:
            out[variant] = math.log2(rows[-1]["best_lr"] / rows[0]["best_lr"])
    return out


def write(results_path: str, out_dir: str, loss_col: str = "best_eval_loss") -> dict:
    """transfer.json and the figure for the sweep results at `results_path`."""
    grid = load_grid(results_path, loss_col)
    best = optima(grid)
    summary = {"source": results_path, "loss": loss_col, "runs": grid, "optima": best,
               "log2_shift_widest_over_narrowest": shifts(best)}  # fmt: skip
    os.makedirs(out_dir, exist_ok=True)
    from scaling.laws.plots import plot_lr_transfer  # lazy: matplotlib

    plot_lr_transfer(grid, best, out_dir)
    with open(os.path.join(out_dir, "transfer.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(_finite(summary), indent=2, sort_keys=True, allow_nan=False) + "\n")
    return summary


def _finite(value):
    """nan (a diverged run) as null: strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling.laws.transfer",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--results", required=True, help="results.csv of the transfer sweep")
    parser.add_argument("--out", required=True, help="directory for transfer.json and figure")
    parser.add_argument("--loss-col", default="best_eval_loss", help="loss column")
    args = parser.parse_args(argv)
    try:
        summary = write(args.results, args.out, args.loss_col)
    except UserError as e:
        print(f"error: {e}")
        return 2
    for b in summary["optima"]:
        edge = "" if b["interior"] else " (at the grid's edge)"
        print(f"{b['variant']} d_model={b['d_model']}: best lr {b['best_lr']:.3g}{edge}, "
              f"loss {b['best_loss']:.4f}")
    for variant, shift in summary["log2_shift_widest_over_narrowest"].items():
        print(f"{variant}: best lr moves by 2^{shift:+.2f} from the narrowest to the widest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
