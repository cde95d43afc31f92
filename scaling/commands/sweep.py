"""`scaling sweep --spec FILE --workdir DIR`: run a scaling sweep (resumable; skips finished
runs), here or through a cluster launcher, and gather results.csv (scaling/laws/sweep.py,
scaling/laws/sweep_launch.py do the work)."""

from __future__ import annotations

import argparse

from scaling.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
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
