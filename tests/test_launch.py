"""The launchers' --dry-run prints the exact commands for sample values (read back with shlex,
as a shell would), and the GKE JobSet renders to YAML that parses. No cluster is touched."""

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

LAUNCH = Path(__file__).resolve().parent.parent / "launch"
REPO, REV = "https://git.example.org/team/scaling.git", "0123abcd"
TRAIN = ["--config", "gpt3-1.3b", "--set", "mesh.tensor=4", "--set", "data.source=text:a b/*"]


def dry_run(script: str, *args: str) -> list[str]:
    out = subprocess.run(["bash", str(LAUNCH / script), "--dry-run", *args], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return out.splitlines()


def test_tpu_pod_installs_one_revision_then_starts_every_host():
    lines = dry_run("tpu_pod.sh", "--tpu", "pod1", "--zone", "us-east5-a", "--workdir",
                    "/mnt/runs/a", "--project", "proj", "--repo", REPO, "--rev", REV,
                    "--", *TRAIN)
    install, train, mkdir, scp = (shlex.split(line) for line in lines)
    ssh = ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "pod1", "--zone", "us-east5-a",
           "--project", "proj", "--worker=all", "--command"]
    assert install[:-1] == ssh and train[:-1] == ssh
    assert f"git clone -q {REPO} scaling" in install[-1]
    assert f"git checkout -q --detach {REV}" in install[-1]
    remote = shlex.split(train[-1])  # the command every host runs
    start = remote.index("SCALING_DISTRIBUTED=auto")
    assert remote[start + 1:start + 7] == ["python3", "-m", "scaling.cli", "train",
                                           "--workdir", "/mnt/runs/a"]
    assert remote[start + 7:start + 7 + len(TRAIN)] == TRAIN  # quoting survives the hop
    assert remote[-2:] == ["logs/$(hostname).log", "2>&1"]
    assert mkdir == ["mkdir", "-p", "logs/pod1"]
    assert scp[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"]
    assert scp[-2:] == ["pod1:scaling/logs/*", "logs/pod1/"] and "--worker=all" in scp


def test_slurm_starts_one_process_per_gpu_with_the_coordinator():
    lines = dry_run("slurm.sbatch", "--nodes", "2", "--coordinator", "node001", "--port",
                    "1234", "--workdir", "/shared/a", "--repo", REPO, "--rev", REV,
                    "--install", "/tmp/s", "--", *TRAIN)
    mkdir, install, train = (shlex.split(line) for line in lines)
    assert mkdir == ["mkdir", "-p", "/shared/a/logs"]
    assert install[:5] == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "bash"]
    assert f"checkout -q --detach {REV}" in install[-1] and "/tmp/s/src[gpu]" in install[-1]
    assert train[:6] == ["srun", "--nodes=2", "--ntasks=16", "--ntasks-per-node=8",
                         "--kill-on-bad-exit=1", "--output=/shared/a/logs/%j-%t.log"]
    task = shlex.split(train[-1])  # what each of the 16 tasks runs
    assert task[:4] == ["CUDA_VISIBLE_DEVICES=$SLURM_LOCALID", "SCALING_COORDINATOR=node001:1234",
                        "SCALING_NUM_PROCESSES=16", "SCALING_PROCESS_ID=$SLURM_PROCID"]
    assert task[4:10] == ["exec", "/tmp/s/venv/bin/python", "-m", "scaling.cli", "train",
                          "--workdir"]
    assert task[11:] == TRAIN


def test_slurm_per_node_and_missing_values():
    lines = dry_run("slurm.sbatch", "--per-node", "--nodes", "3", "--coordinator", "n1",
                    "--workdir", "/w", "--repo", REPO, "--rev", REV)
    train = shlex.split(lines[-1])
    assert "--ntasks=3" in train and "--ntasks-per-node=1" in train
    assert "SCALING_NUM_PROCESSES=3" in shlex.split(train[-1])
    bad = subprocess.run(["bash", str(LAUNCH / "slurm.sbatch"), "--dry-run", "--nodes", "2",
                          "--workdir", "/w", "--repo", REPO, "--rev", REV],
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert bad.returncode == 2 and "--coordinator" in bad.stderr


@pytest.mark.parametrize("slices", [1, 2])
def test_gke_jobset_renders_yaml_that_parses(slices):
    lines = dry_run("gke_jobset.sh", "--name", "run1", "--image", "python:3.11", "--pvc",
                    "runs", "--repo", REPO, "--rev", REV, "--slices", str(slices),
                    "--topology", "4x4x4", "--hosts", "16", "--", *TRAIN)
    cut = lines.index("---")
    doc = yaml.safe_load("\n".join(lines[:cut]))
    assert doc["kind"] == "JobSet" and doc["metadata"]["name"] == "run1"
    (job,) = doc["spec"]["replicatedJobs"]
    assert job["replicas"] == slices and job["template"]["spec"]["completions"] == 16
    pod = job["template"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "4x4x4"
    (container,) = pod["containers"]
    assert container["image"] == "python:3.11"
    script = container["args"][0]
    assert f"checkout -q --detach {REV}" in script and "${MEGASCALE_SLICE_ID}" in script
    train = shlex.split(script.split(";")[-1].split("2>&1")[0])
    assert train[:6] == ["python3", "-m", "scaling.cli", "train", "--workdir", "/runs/run1"]
    assert train[6:] == TRAIN
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MEGASCALE_NUM_SLICES"] == str(slices) and env["SCALING_DISTRIBUTED"] == "auto"
    assert shlex.split(lines[cut + 1])[:4] == ["kubectl", "apply", "-f", "-"]
    assert lines[-1].endswith("> logs/run1.log")


def test_yaml_templates_parse_as_they_are():
    for name in ("gke_jobset.yaml", "gke_tpu_job.yaml"):
        docs = list(yaml.safe_load_all((LAUNCH / name).read_text()))
        assert docs and all(isinstance(d, dict) for d in docs)
