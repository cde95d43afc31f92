"""`scaling sweep --launcher slurm|gke|tpu [--dry-run]`: one cluster job per unfinished point,
through the launchers in launch/, every point's run directory under --workdir.

Each point becomes a plain `scaling train --workdir DIR/<name> --config <base> --set ...`
whose overrides reproduce the point's config exactly (every field that differs from the
base preset), so a point trains on the cluster as it would in `scaling sweep`.

- slurm: ONE submission, a job array (`sbatch --array=0-K-1 launch/slurm.sbatch --points
  FILE`): task i reads line i of DIR/sweep_points.txt (its run directory and train args).
- gke: one JobSet per point (launch/gke_jobset.sh --name <point> --workdir DIR/<name>).
- tpu: one job per point on the TPU VM, one after another (launch/tpu_pod.sh --workdir
  DIR/<name>).

`scaling sweep --collect --workdir DIR` (and every rerun) gathers results.csv from the points
that have finished, reading the spec that the sweep saved as DIR/sweep_spec.json.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

from scaling import config as cfg
from scaling import storage
from scaling.errors import UserError
from scaling.laws import sweep
from scaling.presets import get_preset

LAUNCHERS = ("local", "slurm", "gke", "tpu")
SPEC_FILE = "sweep_spec.json"
POINTS_FILE = "sweep_points.txt"
SCRIPTS = {"slurm": "slurm.sbatch", "gke": "gke_jobset.sh", "tpu": "tpu_pod.sh"}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = v
    return out


def train_args(run: sweep.Run, base: str) -> list[str]:
    """`scaling train` arguments (after --workdir) that rebuild `run.config` from preset
    `base`: --config base and a --set for every field that differs."""
    want, have = _flat(run.config.to_dict()), _flat(get_preset(base).to_dict())
    args = ["--config", base]
    for key in sorted(want):
        if key != "name" and want[key] != have.get(key):
            args += ["--set", f"{key}={want[key]!r}" if isinstance(want[key], float)
                     else f"{key}={want[key]}"]  # fmt: skip
    rebuilt = cfg.apply_overrides(get_preset(base), args[3::2])
    if rebuilt.to_dict() | {"name": ""} != run.config.to_dict() | {"name": ""}:
        raise UserError(f"sweep point {run.name}: its config cannot be written as --set "
                        f"overrides of {base}; run it with the local launcher")  # fmt: skip
    return args


def save_spec(spec: dict, workdir: str) -> None:
    """DIR/sweep_spec.json: what --collect and `scaling fit --emit-sweep` read back."""
    storage.makedirs(workdir)
    storage.write_atomic(storage.join(workdir, SPEC_FILE), json.dumps(spec, indent=2) + "\n")


def load_saved_spec(workdir: str) -> dict:
    path = storage.join(workdir, SPEC_FILE)
    try:
        return json.loads(storage.read_text(path))
    except (OSError, FileNotFoundError, json.JSONDecodeError):
        raise UserError(f"--collect: no readable {SPEC_FILE} in {workdir}; give the sweep's "
                        f"--spec FILE") from None  # fmt: skip


def pending(runs: list[sweep.Run], workdir: str) -> list[sweep.Run]:
    """The runs whose directory holds no finished run."""
    return [r for r in runs if not sweep.is_finished(storage.join(workdir, r.name))]


def _script(launcher: str) -> str:
    path = Path(__file__).resolve().parents[2] / "launch" / SCRIPTS[launcher]
    if not path.is_file():
        raise UserError(f"--launcher {launcher}: {path} is missing; run from a checkout of "
                        f"the repository (launch/ holds the launchers)")  # fmt: skip
    return str(path)


def _dns_label(name: str) -> str:
    """A Kubernetes object name: lowercase letters, digits and '-', at most 63 characters."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return label[:63].rstrip("-") or "point"


def commands(
    launcher: str,
    todo: list[sweep.Run],
    workdir: str,
    base: str,
    launcher_args: list[str],
    sbatch_args: list[str],
) -> tuple[list, list[str]]:
    """(commands to run, lines of the SLURM points file) for the unfinished points."""
    script = _script(launcher)
    dirs = [storage.join(workdir, r.name) for r in todo]
    points = [shlex.join([d, *train_args(r, base)]) for r, d in zip(todo, dirs, strict=True)]
    if launcher == "slurm":
        cmd = [
            "sbatch",
            f"--array=0-{len(todo) - 1}",
            "--job-name=scaling-sweep",
            *sbatch_args,
            script,
            "--points",
            storage.join(workdir, POINTS_FILE),
            *launcher_args,
        ]
        return [cmd], points
    cmds = []
    for r, d in zip(todo, dirs, strict=True):
        named = ["--name", _dns_label(r.name)] if launcher == "gke" else []
        cmds.append(["bash", script, *named, "--workdir", d, *launcher_args, "--",
                     *train_args(r, base)])  # fmt: skip
    return cmds, []


def launch(
    launcher: str,
    spec: dict,
    runs: list[sweep.Run],
    workdir: str,
    *,
    launcher_args: list[str],
    sbatch_args: list[str],
    dry_run: bool,
) -> int:
    """Submit every unfinished point (or print the submissions with `dry_run`); returns the
    number of points submitted. A local `workdir` is made absolute: the cluster's nodes
    mount the same shared filesystem."""
    workdir = storage.absolute(workdir)
    todo = pending(runs, workdir)
    if not todo:
        print(f"every point of the sweep in {workdir} has finished; nothing to submit")
        return 0
    cmds, points = commands(launcher, todo, workdir, str(spec["base"]), launcher_args,
                            sbatch_args)  # fmt: skip
    if dry_run:
        for cmd in cmds:
            print(shlex.join(cmd))
        if points:
            print(f"# {storage.join(workdir, POINTS_FILE)}: line i is array task i")
            print("\n".join(points))
        return len(todo)
    save_spec(spec, workdir)
    if points:
        storage.write_atomic(storage.join(workdir, POINTS_FILE), "\n".join(points) + "\n")
    for cmd in cmds:
        try:
            subprocess.run(cmd, check=True)
        except FileNotFoundError:
            raise UserError(f"--launcher {launcher}: {cmd[0]} is not installed here; submit "
                            f"from a machine with the cluster's tools") from None  # fmt: skip
        except subprocess.CalledProcessError as e:
            raise UserError(f"--launcher {launcher}: `{shlex.join(cmd[:3])} ...` exited "
                            f"{e.returncode}; its output above says why") from None  # fmt: skip
    print(f"submitted {len(todo)} point(s); `scaling sweep --collect --workdir {workdir}` "
          f"gathers results.csv from those that finish")  # fmt: skip
    return len(todo)
