"""`scaling sweep --launcher slurm|gke|tpu --dry-run` (one submission per the launcher's unit,
read back with shlex as a shell would, as tests/test_launch.py does) and `--collect` on a
directory where only some points have finished. No cluster is touched."""

import csv
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from scaling import config as cfg
from scaling.cli import main
from scaling.errors import UserError
from scaling.laws import sweep
from scaling.presets import get_preset

LAUNCH = Path(__file__).resolve().parent.parent / "launch"
SPEC = {"base": "gpt-tiny", "settings": {"train.global_batch": 16, "optim.warmup_steps": 5,
                                         "model.mup_base_width": 64},
        "ladder": {"d_model": [32, 64], "aspect_ratio": 32, "head_dim": 32},
        "budgets": [1e12, 3e12], "lr": 3e-3}  # fmt: skip


def _finish(run_dir: Path, loss: float, preempted: bool = False) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "final_eval_loss": loss,
        "best_eval_loss": loss - 0.01,
        "steps": 10,
        "end_step": 5 if preempted else 10,
        "preempted": preempted,
        "wall_time": 2.0,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))


def _setup(tmp_path, finished=("L1-d32-C1e+12",)):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    work = tmp_path / "work"
    for name in finished:
        _finish(work / name, 3.5)
    runs = sweep.expand(SPEC)
    return str(spec), work, runs


def test_slurm_dry_run_is_one_array_over_every_unfinished_point(tmp_path, capsys):
    spec, work, runs = _setup(tmp_path)
    _finish(work / "L2-d64-C3e+12", 3.0, preempted=True)  # interrupted: still to run
    assert main(["sweep", "--spec", spec, "--workdir", str(work), "--launcher", "slurm",
                 "--dry-run", "--sbatch-arg=--nodes=1", "--", "--gpus-per-node", "1",
                 "--repo", "R", "--rev", "V"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    sbatch = shlex.split(lines[0])
    todo = [r for r in runs if r.name != "L1-d32-C1e+12"]
    assert sbatch[:4] == ["sbatch", f"--array=0-{len(todo) - 1}", "--job-name=scaling-sweep",
                          "--nodes=1"]  # fmt: skip
    assert sbatch[4] == str(LAUNCH / "slurm.sbatch")
    points_file = str(work / "sweep_points.txt")
    assert sbatch[5:] == ["--points", points_file, "--gpus-per-node", "1", "--repo", "R",
                          "--rev", "V"]  # fmt: skip
    assert not os.path.exists(points_file)  # a dry run writes nothing
    points = [shlex.split(line) for line in lines[2:]]
    assert [p[0] for p in points] == [str(work / r.name) for r in todo]
    for p, r in zip(points, todo, strict=True):  # the --set overrides rebuild the config
        assert p[1:3] == ["--config", "gpt-tiny"]
        rebuilt = cfg.apply_overrides(get_preset("gpt-tiny"), p[4::2])
        assert rebuilt.to_dict() | {"name": ""} == r.config.to_dict() | {"name": ""}
    # slurm.sbatch reads task i's line in place of --workdir and the train args
    Path(points_file).write_text("\n".join(lines[2:]) + "\n")
    task = 2
    out = subprocess.run(["bash", str(LAUNCH / "slurm.sbatch"), "--dry-run", "--points",
                          points_file, "--task", str(task), "--nodes", "1", "--coordinator",
                          "n1", "--repo", "R", "--rev", "V"], check=True, capture_output=True,
                         text=True).stdout.splitlines()  # fmt: skip
    train = shlex.split(shlex.split(out[-1])[-1])
    start = train.index("train")
    assert train[start + 1 :] == ["--workdir", *points[task]]


def test_slurm_points_without_a_task_is_a_usage_error(tmp_path):
    points = tmp_path / "p.txt"
    points.write_text("/w/a --config gpt-tiny\n")
    bad = subprocess.run(["bash", str(LAUNCH / "slurm.sbatch"), "--dry-run", "--points",
                          str(points), "--nodes", "1", "--coordinator", "n1", "--repo", "R",
                          "--rev", "V"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    assert bad.returncode == 2 and "--points needs an array task" in bad.stderr


@pytest.mark.parametrize("launcher,script", [("gke", "gke_jobset.sh"), ("tpu", "tpu_pod.sh")])
def test_gke_and_tpu_dry_runs_submit_one_job_per_unfinished_point(tmp_path, capsys, launcher,
                                                                   script):  # fmt: skip
    spec, work, runs = _setup(tmp_path)
    assert main(["sweep", "--spec", spec, "--workdir", str(work), "--launcher", launcher,
                 "--dry-run", "--", "--repo", "R"]) == 0  # fmt: skip
    cmds = [shlex.split(line) for line in capsys.readouterr().out.splitlines()]
    todo = [r for r in runs if r.name != "L1-d32-C1e+12"]
    assert len(cmds) == len(todo)
    for cmd, r in zip(cmds, todo, strict=True):
        assert cmd[:2] == ["bash", str(LAUNCH / script)]
        assert cmd[cmd.index("--workdir") + 1] == str(work / r.name)
        if launcher == "gke":
            assert cmd[cmd.index("--name") + 1] == r.name.lower().replace(".", "-").replace(
                "+", "-")  # fmt: skip
        train = cmd[cmd.index("--", 3) + 1 :]
        rebuilt = cfg.apply_overrides(get_preset("gpt-tiny"), train[3::2])
        assert rebuilt.to_dict() | {"name": ""} == r.config.to_dict() | {"name": ""}
    if launcher == "gke":  # the script renders a JobSet from these flags
        out = subprocess.run(["bash", cmds[0][1], "--dry-run", "--image", "python:3.11",
                              "--pvc", "runs", "--rev", "V", *cmds[0][2:]], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        assert f"--workdir {work / todo[0].name}" in out.replace("'", "")


def test_collect_on_a_partly_finished_directory_writes_the_finished_rows(tmp_path, capsys):
    spec, work, runs = _setup(tmp_path, finished=("L1-d32-C1e+12", "L2-d64-C3e+12"))
    _finish(work / "L1-d32-C3e+12", 3.3, preempted=True)  # still training
    (work / "L2-d64-C1e+12").mkdir()  # submitted, not started
    with pytest.raises(UserError, match="no readable sweep_spec.json"):
        main_or_raise(["sweep", "--collect", "--workdir", str(work)])
    assert main(["sweep", "--spec", spec, "--workdir", str(work), "--launcher", "slurm",
                 "--dry-run"]) == 0  # fmt: skip
    (work / "sweep_spec.json").write_text(json.dumps(SPEC))  # as a submission saves it
    assert main(["sweep", "--collect", "--workdir", str(work)]) == 0
    with open(work / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["L1-d32-C1e+12", "L2-d64-C3e+12"]
    assert [float(r["final_eval_loss"]) for r in rows] == [3.5, 3.5]
    assert "2 of 4 finished" in capsys.readouterr().out


def main_or_raise(argv):
    from scaling.cli import build_parser

    args = build_parser().parse_args(argv)
    return args.fn(args)
