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
    parser.add_argument(
        "--curve-metric",
        choices=("eval_loss", "loss"),
        default="eval_loss",
        help="approach 1: the logged loss whose envelope is taken (default eval_loss, the "
        "loss the other fits use; loss: training loss)",
    )
    add_predict_arguments(parser)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
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


def _curves(args) -> list:
    """Approach 1's learning curves: every finished run directory under --runs that the table
    names (a run still training has only part of its curve)."""
    from scaling.laws import envelope, results

    if not args.runs:
        return []
    n_of = {}
    for _, row in results.read_rows(args.results):
        try:
            n_of[str(row["name"])] = float(row[args.n_col])
        except (KeyError, TypeError, ValueError):
            continue
    flops, _ = _run_scales(args.results)
    from scaling.laws.sweep import is_finished

    metrics = {name: results.load_metrics(path) for name, path in
               results.find_runs(args.runs).items()
               if name in n_of and is_finished(os.path.dirname(path))}  # fmt: skip
    return envelope.curves_from_metrics(metrics, n_of, flops, args.curve_metric)


def _figures(args, table, outcome: fit.FitOutcome, check=None) -> list[str]:  # noqa: F821
    from scaling.laws import plots, results

    paths = []
    for variable in ("N", "D", "C"):
        law = outcome.power_laws.get(variable)
        paths += plots.plot_loss_vs(table, variable, law, args.out, outcome.parametric)
    if outcome.isoflop is not None:
        measured = _measured_table(args) if check else None
        paths += plots.plot_isoflops(table, outcome.isoflop, args.out, outcome.parametric,
                                     check, measured)  # fmt: skip
    if outcome.isoflop is not None or outcome.parametric is not None:
        c_range = (float(table.c.min()), float(table.c.max()))
        paths += plots.plot_optimal_allocation(outcome.isoflop, outcome.parametric, args.out,
                                               c_range, outcome.envelope)  # fmt: skip
    if args.runs:
        runs = results.find_runs(args.runs)
        curves = {name: results.load_metrics(path) for name, path in runs.items()}
        if curves:
            flops, groups = _run_scales(args.results)
            paths += plots.plot_learning_curves(curves, args.out, flops, groups)
    return [os.path.basename(p) for p in paths if p.endswith(".png")]


def _measured_table(args):
    from scaling.laws import results

    return (
        results.load_results(
            args.measured,
            n_col=args.n_col,
            d_col=args.d_col,
            c_col=args.c_col,
            loss_col=args.loss_col,
        )
        if args.measured
        else None
    )


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


def fit_command(args: argparse.Namespace) -> int:
    """Load the results, run every fit, write fit.json, report.md and figures to --out."""
    from scaling.laws import fit, report, results  # lazy: scipy, matplotlib

    resolve_columns(args)
    _check_flags(args)
    table = results.load_results(args.results, n_col=args.n_col, d_col=args.d_col,
                                 c_col=args.c_col, loss_col=args.loss_col,
                                 budget_col=args.budget_col)  # fmt: skip
    settings = _settings(args, table)
    if args.drop_highest_loss:
        table = results.drop_highest_loss(table, args.drop_highest_loss)
    outcome = fit.run_fits(table, settings, _curves(args))
    summary = dict(outcome.summary, dropped_highest_loss=args.drop_highest_loss)
    prediction = None
    if args.predict:
        from scaling.laws import check

        prediction = check.run_check(args, table, outcome)
    figures = [] if args.no_plots else _figures(args, table, outcome, prediction)
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
    parser.add_argument("--spec", default=None,
                        help="YAML or JSON sweep spec (with --collect: default the spec the "
                        "sweep saved as DIR/sweep_spec.json)")  # fmt: skip
    parser.add_argument("--workdir", required=True, help="one run directory per run in here")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained in parallel processes")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list the runs (with --launcher: print the submissions) and stop",
    )
    parser.add_argument("--launcher", choices=("local", "slurm", "gke", "tpu"), default="local",
                        help="local: train here (--jobs processes); slurm: one job array over "
                        "the unfinished points; gke: one JobSet per point; tpu: one TPU-VM job "
                        "per point (launch/; default local)")  # fmt: skip
    parser.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG",
                        help="slurm: an sbatch option for the array, e.g. --sbatch-arg=--nodes=1 "
                        "(repeatable)")  # fmt: skip
    parser.add_argument(
        "--collect",
        action="store_true",
        help="train nothing: gather results.csv from the finished points",
    )
    parser.add_argument("launcher_args", nargs="*", metavar="-- LAUNCHER ARGS",
                        help="after --: flags for the launcher script (e.g. -- --repo URL "
                        "--gpus-per-node 8)")  # fmt: skip


def _sweep_spec(args) -> dict:
    from scaling.laws import sweep, sweep_launch

    if args.spec:
        return sweep.load_spec(args.spec)
    if args.collect:
        return sweep_launch.load_saved_spec(args.workdir)
    raise UserError("sweep: --spec FILE is required (only --collect reads the spec the sweep "
                    "saved in --workdir)")  # fmt: skip


def _gather(runs, workdir: str, trained: list[str]) -> None:
    from scaling import storage
    from scaling.laws import sweep

    rows = sweep.gather_results(runs, workdir)
    finished = len(rows)
    print(f"trained {len(trained)} run(s) this time; {finished} of {len(runs)} finished; "
          f"{len(rows)} rows in {storage.join(workdir, 'results.csv')}")  # fmt: skip


def sweep_command(args: argparse.Namespace) -> int:
    """Expand the spec, train unfinished runs (here or through a cluster launcher), gather
    results.csv/results.jsonl."""
    from scaling.laws import sweep, sweep_launch

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: expected at least 1")
    if args.launcher_args and args.launcher == "local":
        raise UserError("arguments after -- go to a cluster launcher; name it with --launcher "
                        "slurm|gke|tpu")  # fmt: skip
    spec = _sweep_spec(args)
    runs = sweep.expand(spec)
    if args.collect:
        _gather(runs, args.workdir, [])
        return 0
    if args.launcher != "local":
        sweep_launch.launch(args.launcher, spec, runs, args.workdir,
                            launcher_args=args.launcher_args, sbatch_args=args.sbatch_arg,
                            dry_run=args.dry_run)  # fmt: skip
        if not args.dry_run:
            _gather(runs, args.workdir, [])
        return 0
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
        sweep_launch.save_spec(spec, args.workdir)
        trained = sweep.run_sweep(runs, args.workdir, jobs=args.jobs)
    _gather(runs, args.workdir, trained)
    return 0
