"""`scaling fit --results FILE --out DIR`: fit scaling laws to a results table; fit.json,
report.md and plots (the fits: scaling/laws/). Bad input raises UserError (the CLI prints
one line and exits 2).

Defaults fit a `scaling sweep` results.csv with no column flags: the loss column is the first
of loss, best_eval_loss, final_eval_loss the table has; IsoFLOP runs are grouped by the
sweep's `budget` column when every row has one; learning curves come from the run
directories beside the table; compute-optimal predictions are made at the decades from the
data's compute to 100x beyond it.
"""

from __future__ import annotations

import argparse
import os

from scaling.errors import UserError

LOSS_COLUMNS = ("loss", "best_eval_loss", "final_eval_loss")  # --loss-col's default, in order


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers like 1e21,1e23") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive compute budgets")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `scaling fit --results FILE --out DIR`."""
    parser.add_argument("--results", required=True, help="CSV/TSV/JSONL table, one run a row")
    parser.add_argument("--out", required=True, help="directory for fit.json, report, plots")
    parser.add_argument("--n-col", default="N", help="parameters column (default: N)")
    parser.add_argument("--d-col", default="D", help="training tokens column (default: D)")
    parser.add_argument(
        "--c-col", default="C", help="training FLOP column, used when D is absent: D = C/(6N)"
    )
    parser.add_argument(
        "--loss-col",
        default=None,
        help="loss column (default: the first of " + ", ".join(LOSS_COLUMNS) + " present)",
    )
    parser.add_argument(
        "--budget-col",
        default="auto",
        help="nominal IsoFLOP budget column; 'none' groups runs by C within --budget-tol "
        "(default: the sweep's 'budget' column when every row has one, else none)",
    )
    parser.add_argument(
        "--budget-tol",
        type=float,
        default=0.05,
        help="without --budget-col: runs whose C differ by less than this "
        "fraction share an IsoFLOP budget (default 0.05)",
    )
    parser.add_argument(
        "--budgets",
        type=_floats,
        default=None,
        help="compute budgets (FLOP) to predict N_opt, D_opt for, comma-separated "
        "(default: every decade from the data's smallest C to 100x its largest)",
    )
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument(
        "--starts",
        type=int,
        default=128,
        help="approach 3: L-BFGS from the K best grid points (0: all 4500)",
    )
    parser.add_argument("--level", type=float, default=0.95, help="interval confidence")
    parser.add_argument(
        "--drop-highest-loss",
        type=int,
        default=0,
        metavar="K",
        help="drop the K highest-loss runs before fitting: Epoch AI's procedure for the "
        "Chinchilla extraction (Besiroglu et al. 2024 drop 5 of 245 points, outliers "
        "that dominate the Huber tail); default 0 keeps every run",
    )
    parser.add_argument(
        "--no-irreducible",
        action="store_true",
        help="fit L(N), L(D), L(C) as pure power laws (Kaplan et al.)",
    )
    parser.add_argument(
        "--runs",
        default=None,
        help="directory of run directories with metrics.jsonl to plot (default: the "
        "results file's directory, when it holds runs, as a sweep's workdir does)",
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the figures")  # fmt: skip
    parser.add_argument(
        "--curve-metric",
        choices=("eval_loss", "loss"),
        default="eval_loss",
        help="approach 1: the logged loss whose envelope is taken (default eval_loss, the "
        "loss the other fits use; loss: training loss)",
    )
    _add_predict_arguments(parser)


def _add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `scaling fit ... --predict C1,C2` (scaling/laws/check.py)."""
    parser.add_argument(
        "--predict",
        type=_floats,
        default=None,
        help="held-out budgets (FLOP): N_opt, D_opt and loss per approach with a prediction "
        "interval including run-to-run noise; writes prediction.json and prediction.md",
    )
    parser.add_argument(
        "--replicates",
        default=None,
        help="table of runs repeating a run of --results with other seeds (same N and D): "
        "their spread is the run-to-run noise (default: approach 3's residuals only)",
    )
    parser.add_argument(
        "--measured",
        default=None,
        help="table of runs made at the --predict budgets (a `scaling sweep` results.csv): "
        "prediction.json records how far each approach missed",
    )
    parser.add_argument(
        "--emit-sweep",
        default=None,
        metavar="FILE",
        help="write a sweep spec (YAML or JSON) running the predicted-optimal width and one "
        "either side at each --predict budget",
    )
    parser.add_argument(
        "--sweep-spec",
        default=None,
        help="spec of the fitted sweep, for --emit-sweep (default: sweep_spec.json, which "
        "`scaling sweep` writes beside results.csv)",
    )


def _header(path: str) -> list[str]:
    """Column names of a results table (CSV/TSV header or the first JSONL object's keys)."""
    from scaling.laws import results

    rows = results.read_rows(path)
    return [str(k) for k in rows[0][1]], rows


def resolve_columns(args: argparse.Namespace) -> None:
    """Fill --loss-col and --budget-col left at their defaults from the table's columns."""
    columns, rows = _header(args.results)
    if args.loss_col is None:
        found = [c for c in LOSS_COLUMNS if c in columns]
        if not found:
            raise UserError(
                f"{args.results}: no loss column ({', '.join(LOSS_COLUMNS)}; "
                f"columns: {', '.join(columns)}); name it with --loss-col"
            )
        args.loss_col = found[0]
    if args.budget_col == "auto":

        def numeric(v) -> bool:
            try:
                return float(v) > 0
            except (TypeError, ValueError):
                return False

        complete = "budget" in columns and all(numeric(r.get("budget")) for _, r in rows)
        args.budget_col = "budget" if complete else None
    elif args.budget_col in ("none", ""):
        args.budget_col = None
    if args.runs is None:
        here = os.path.dirname(os.path.abspath(args.results))
        has_runs = any(os.path.isfile(os.path.join(here, d, "metrics.jsonl"))
                       for d in os.listdir(here))  # fmt: skip
        args.runs = here if has_runs else None


def _settings(args: argparse.Namespace, table) -> fit.FitSettings:  # noqa: F821
    from scaling.laws import fit

    if args.bootstrap < 0:
        raise UserError(f"--bootstrap {args.bootstrap}: expected a count >= 0")
    if args.starts < 0:
        raise UserError(f"--starts {args.starts}: expected a count >= 0 (0 = every grid point)")
    if args.budget_tol <= 0:
        raise UserError(f"--budget-tol {args.budget_tol}: expected a positive fraction")
    if not 0 < args.level < 1:
        raise UserError(f"--level {args.level}: expected a fraction between 0 and 1")
    return fit.FitSettings(
        n_boot=args.bootstrap,
        seed=args.seed,
        level=args.level,
        budgets=tuple(args.budgets or fit.default_budgets(table.c)),
        irreducible=not args.no_irreducible,
        starts=args.starts,
        budget_tol=args.budget_tol,
    )


def _measured_table(args):
    """--measured's table, read with --results' columns (None without --measured)."""
    from scaling.laws import results

    if not args.measured:
        return None
    return results.load_results(args.measured, n_col=args.n_col, d_col=args.d_col,
                                c_col=args.c_col, loss_col=args.loss_col)  # fmt: skip


def _check_flags(args) -> None:
    if (args.measured or args.emit_sweep or args.replicates) and not args.predict:
        raise UserError("--measured, --replicates and --emit-sweep need --predict C1,C2 (the "
                        "held-out budgets)")  # fmt: skip
    if args.emit_sweep and args.sweep_spec is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(args.results)), "sweep_spec.json")
        if not os.path.isfile(beside):
            raise UserError(f"--emit-sweep: no sweep_spec.json beside {args.results}; name the "
                            f"fitted sweep's spec with --sweep-spec FILE")  # fmt: skip
        args.sweep_spec = beside


def run(args: argparse.Namespace) -> int:
    """Load the results, run every fit, write fit.json, report.md and figures to --out."""
    from scaling.laws import envelope, fit, report, results  # lazy: scipy, matplotlib

    resolve_columns(args)
    _check_flags(args)
    table = results.load_results(args.results, n_col=args.n_col, d_col=args.d_col,
                                 c_col=args.c_col, loss_col=args.loss_col,
                                 budget_col=args.budget_col)  # fmt: skip
    settings = _settings(args, table)
    if args.drop_highest_loss:
        table = results.drop_highest_loss(table, args.drop_highest_loss)
    curves = envelope.curves_from_runs(args.results, args.runs, args.n_col,
                                       args.curve_metric) if args.runs else []
    outcome = fit.run_fits(table, settings, curves)
    summary = dict(outcome.summary, dropped_highest_loss=args.drop_highest_loss)
    prediction = None
    if args.predict:
        from scaling.laws import check

        prediction = check.run_check(args, table, outcome)
    figures = []
    if not args.no_plots:
        from scaling.laws import plots  # matplotlib

        measured = _measured_table(args) if prediction else None
        figures = plots.write_figures(table, outcome, args.out, args.results, args.runs,
                                      prediction, measured)  # fmt: skip
    paths = report.write_outputs(summary, args.out, figures, prediction)
    a3 = summary["approach3"]
    if "error" in a3:
        print(f"approach 3: {a3['error']}")
    else:
        p = a3["params"]
        print(f"approach 3: E={p['E']:.3f} A={p['A']:.4g} B={p['B']:.4g} "
              f"alpha={p['alpha']:.3f} beta={p['beta']:.3f} a={p['a']:.3f}")  # fmt: skip
    if "approach1" in summary and "error" not in summary["approach1"]:
        print(f"approach 1: a={summary['approach1']['params']['a']:.3f}")
    if prediction:
        for r in prediction["predictions"]:
            lo, hi = r["loss_interval"]
            print(f"predict C={r['budget']:.3g} approach {r['approach']}: N_opt={r['N_opt']:.4g} "
                  f"loss={r['loss']:.4f} [{lo:.4f}, {hi:.4f}]")  # fmt: skip
    print(f"wrote {paths['fit']} and {paths['report']}")
    return 0
