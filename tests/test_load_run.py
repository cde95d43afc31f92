"""`load_run` (scaling/checkpoint/load.py), the one way an inference command reads a run:
on a tiny trained run, the parameters it restores sharded are the ones orbax reads back as
plain arrays, on the run's own mesh; a wrong directory is one line naming it."""

import json
import os
import pathlib
import re

import numpy as np
import pytest

from scaling.checkpoint.load import load_run
from scaling.checkpoint.manager import Checkpoints, checkpoint_dir
from scaling.cli import main
from scaling.errors import UserError

STEPS = 3
SETS = [
    "model.n_layers=2", "model.d_model=32", "model.n_heads=2", "model.d_ff=64",
    "model.max_len=32", "model.vocab_size=384", "data.tokenizer=byte", "train.global_batch=8",
    f"train.steps={STEPS}", "train.eval_every=3", "train.eval_batches=1", "train.log_every=1",
    "optim.warmup_steps=1",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> str:
    """A gpt-tiny run trained for a few steps on a small text corpus (byte tokenizer)."""
    root = tmp_path_factory.mktemp("load_run")
    (root / "doc.txt").write_text("".join(f"line {i} of the corpus\n" for i in range(400)),
                                  encoding="utf-8")
    workdir = str(root / "run")
    args = ["train", "--config", "gpt-tiny", "--workdir", workdir, "--quiet",
            "--data", f"text:{root}/*.txt"]
    assert main(args + [a for s in SETS for a in ("--set", s)]) == 0
    return workdir


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(_flat(v, f"{prefix}{k}/"))
        return out
    return {prefix.rstrip("/"): np.asarray(tree)}


def test_restored_parameters_are_the_saved_ones_on_the_runs_mesh(run):
    loaded = load_run(run, tokenizer=True)
    # the oracle: orbax's own read of the same step as host arrays, no target, no sharding
    ckpt = Checkpoints(checkpoint_dir(run), read_only=True)
    try:
        saved = ckpt.restore_numpy(STEPS)["params"]
    finally:
        ckpt.manager.close()
    got, want = _flat(loaded.params), _flat(saved)
    assert sorted(got) == sorted(want)
    for path in want:
        assert got[path].dtype == want[path].dtype and np.array_equal(got[path], want[path]), path
    assert loaded.step == STEPS and loaded.meta["step"] == STEPS
    assert loaded.directory == checkpoint_dir(run)
    written = json.loads(pathlib.Path(run, "config.json").read_text())
    assert loaded.saved_config.to_dict() == written  # `auto` kept, as the run wrote it
    assert loaded.config.model.dtype == "float32"  # resolved for this (CPU) host
    # the run's own mesh, as its training recorded it, and every parameter laid out on it
    assert {k: v for k, v in loaded.mesh.shape.items() if v > 1} == \
        {k: v for k, v in loaded.meta["mesh"].items() if v > 1}
    for x, sharding in zip(_leaves(loaded.params), _leaves(loaded.shardings), strict=True):
        assert x.sharding == sharding and len(x.sharding.device_set) == 8
    assert loaded.tokenizer.kind == "byte"
    assert loaded.tokenizer.add_bos == loaded.config.data.bos_prefix


def _leaves(tree):
    import jax

    return jax.tree.leaves(tree)


def test_one_device_and_an_earlier_step(run):
    steps = sorted(int(n) for n in os.listdir(checkpoint_dir(run)) if n.isdigit())
    loaded = load_run(run, one_device=True, step=steps[0])
    assert loaded.mesh.devices.size == 1 and loaded.step == steps[0]
    assert all(len(x.sharding.device_set) == 1 for x in _leaves(loaded.params))
    assert loaded.tokenizer is None  # not asked for


def test_a_missing_or_wrong_workdir_is_one_line(run, tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(UserError) as e:
        load_run(missing)
    assert str(e.value) == (f"{missing} is not a run directory: no config.json (train one "
                            f"with `scaling train --workdir {missing}`)")
    steps = sorted(int(n) for n in os.listdir(checkpoint_dir(run)) if n.isdigit())
    with pytest.raises(UserError, match=re.escape(
            f"--step 99: {run} has checkpoints at steps {', '.join(map(str, steps))}")):
        load_run(run, step=99)
    empty = tmp_path / "empty"
    os.makedirs(empty / "checkpoints")
    (empty / "config.json").write_text(pathlib.Path(run, "config.json").read_text())
    with pytest.raises(UserError, match=re.escape(f"{empty} has no committed checkpoint yet")):
        load_run(str(empty))


def test_the_commands_check_runs_before_anything_is_restored(run):
    seen = []

    def refuse(config, workdir):
        seen.append((config.model.dtype, workdir))
        raise UserError("refused")

    with pytest.raises(UserError, match="refused"):
        load_run(run, check=refuse)
    assert seen == [("auto", run)]  # the config as written, before a mesh or a restore


def test_the_commands_report_a_missing_run_in_one_line(tmp_path, capsys):
    missing, sources = str(tmp_path / "nowhere"), tmp_path / "sources.txt"
    sources.write_text("a sentence\n", encoding="utf-8")
    for args in (["generate", "--prompt", "x"], ["translate", "--input", str(sources)],
                 ["eval", "--tasks", "finetune"], ["convert", "--to-hf", str(tmp_path / "hf")]):
        assert main([*args, "--workdir", missing]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{missing} is not a run directory" in err, args


def test_no_inference_command_restores_a_checkpoint_itself():
    """load_run is the one path: outside scaling/checkpoint/ only training (resume and
    --init_from, scaling/train/) opens checkpoints read-only or restores parameters."""
    root = pathlib.Path(__file__).resolve().parents[1] / "scaling"
    pattern = re.compile(r"restore_params\(|read_only=True|\bread_config\(")
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
                 if p.parent.name not in ("checkpoint", "train")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
