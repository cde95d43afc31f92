"""`scaling fit`: flags and the command body, for the CLI owner to wire into scaling/cli.py.

    parser = subparsers.add_parser("fit", help=...)
    add_fit_arguments(parser)
    ... return fit_command(args)

Bad input raises UserError (the CLI prints one line and exits 2).

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


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
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
            raise UserError(f"{args.results}: no loss column ({', '.join(LOSS_COLUMNS)}; "
                            f"columns: {', '.join(columns)}); name it with --loss-col")
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


def default_budgets(compute) -> tuple[float, ...]:
    """Every power of ten from the smallest run's compute to 100x the largest's."""
    import math

    lo = math.ceil(math.log10(min(compute)) - 0.05)  # runs a hair over a decade start there
    hi = math.ceil(math.log10(max(compute)) - 0.05) + 2
    return tuple(10.0**k for k in range(lo, hi + 1))


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
        budgets=tuple(args.budgets or default_budgets(table.c)),
        irreducible=not args.no_irreducible,
        starts=args.starts,
        budget_tol=args.budget_tol,
    )


def _run_scales(path: str) -> tuple[dict[str, float], dict[str, float]]:
    """From a sweep's table: each run's FLOPs per step (6 N D / steps) and IsoFLOP budget,
    keyed by run name; empty where the table lacks the columns."""
    from scaling.laws import results

    flops, groups = {}, {}
    for _, row in results.read_rows(path):
        try:
            name = str(row["name"])
            flops[name] = 6 * float(row["N"]) * float(row["D"]) / float(row["steps"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
        try:
            groups[name] = float(row["budget"])
        except (KeyError, TypeError, ValueError):
            pass
    return flops, groups


def _figures(args, table, outcome: fit.FitOutcome) -> list[str]:  # noqa: F821
    from scaling.laws import plots, results

    paths = []
    for variable in ("N", "D", "C"):
        law = outcome.power_laws.get(variable)
        paths += plots.plot_loss_vs(table, variable, law, args.out, outcome.parametric)
    if outcome.isoflop is not None:
        paths += plots.plot_isoflops(table, outcome.isoflop, args.out, outcome.parametric)
    if outcome.isoflop is not None or outcome.parametric is not None:
        c_range = (float(table.c.min()), float(table.c.max()))
        paths += plots.plot_optimal_allocation(outcome.isoflop, outcome.parametric, args.out,
                                               c_range)  # fmt: skip
    if args.runs:
        runs = results.find_runs(args.runs)
        curves = {name: results.load_metrics(path) for name, path in runs.items()}
        if curves:
            flops, groups = _run_scales(args.results)
            paths += plots.plot_learning_curves(curves, args.out, flops, groups)
    return [os.path.basename(p) for p in paths if p.endswith(".png")]


def fit_command(args: argparse.Namespace) -> int:
    """Load the results, run every fit, write fit.json, report.md and figures to --out."""
    from scaling.laws import fit, report, results  # lazy: scipy, matplotlib

    resolve_columns(args)
    table = results.load_results(args.results, n_col=args.n_col, d_col=args.d_col,
                                 c_col=args.c_col, loss_col=args.loss_col,
                                 budget_col=args.budget_col)  # fmt: skip
    settings = _settings(args, table)
    if args.drop_highest_loss:
        table = results.drop_highest_loss(table, args.drop_highest_loss)
    outcome = fit.run_fits(table, settings)
    summary = dict(outcome.summary, dropped_highest_loss=args.drop_highest_loss)
    figures = [] if args.no_plots else _figures(args, table, outcome)
    paths = report.write_outputs(summary, args.out, figures)
    a3 = summary["approach3"]
    if "error" in a3:
        print(f"approach 3: {a3['error']}")
    else:
        p = a3["params"]
        print(f"approach 3: E={p['E']:.3f} A={p['A']:.4g} B={p['B']:.4g} "
              f"alpha={p['alpha']:.3f} beta={p['beta']:.3f} a={p['a']:.3f}")  # fmt: skip
    print(f"wrote {paths['fit']} and {paths['report']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (python -m scaling.laws.commands ...), until the CLI wires it in."""
    parser = argparse.ArgumentParser(prog="scaling fit", description=__doc__.splitlines()[0])
    add_fit_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return fit_command(args)
    except UserError as e:
        print(f"error: {e}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `scaling sweep --spec FILE --workdir DIR`."""
    parser.add_argument("--spec", required=True, help="YAML or JSON sweep spec")
    parser.add_argument("--workdir", required=True, help="one run directory per run in here")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained in parallel processes")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and stop")


def sweep_command(args: argparse.Namespace) -> int:
    """Expand the spec, train unfinished runs, gather results.csv/results.jsonl."""
    from scaling.laws import sweep

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: expected at least 1")
    runs = sweep.expand(sweep.load_spec(args.spec))
    from scaling.train.optimizer import hidden_lr

    for r in runs:
        n, lr = r.config.model, r.config.optim.lr
        mup = f" (μP: hidden {hidden_lr(lr, n.width_mult):.3g})" if n.mup_base_width else ""
        print(f"{r.name}: L={n.n_layers} d={n.d_model} tokens={r.tokens:.3g} "
              f"steps={r.config.train.steps} lr={lr:g}{mup}")  # fmt: skip
    if args.dry_run:
        return 0
    from scaling.lock import RunLock

    with RunLock(args.workdir, "sweep"):  # one sweep per directory (its runs lock their own)
        trained = sweep.run_sweep(runs, args.workdir, jobs=args.jobs)
    rows = sweep.gather_results(runs, args.workdir)
    finished = sum(sweep.is_finished(os.path.join(args.workdir, r.name)) for r in runs)
    print(f"trained {len(trained)} run(s) this time; {finished} of {len(runs)} finished; "
          f"{len(rows)} rows in {os.path.join(args.workdir, 'results.csv')}")  # fmt: skip
    return 0
