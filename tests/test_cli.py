"""The command line: bad input ends in one clear line and exit code 2; params prints counts."""

import json
import os
import subprocess
import sys

import pytest

from scaling.cli import main
from scaling.config import ConfigError, apply_overrides
from scaling.presets import get_preset
from scaling.validate import validate


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args,needle", [
    (["params", "--config", "gpt-5"], "unknown preset 'gpt-5'"),
    (["params", "--config", "gpt-tiny", "--set", "model.dmodel=3"], "unknown key 'dmodel'"),
    (["params", "--config", "gpt-tiny", "--set", "model.n_heads=3"],
     "model.n_heads=3 does not divide model.d_model=128; choose heads"),
    (["params", "--config", "gpt-tiny", "--set", "model.d_model=abc"],
     "--set model.d_model=abc: expected a value of type int"),
    (["params", "--config", "gpt-tiny", "--set", "train"],
     "--set 'train': expected the form section.key=value"),
    (["params", "--config", "gpt-tiny", "--set", "model=3"],
     "--set model: 'model' is a section; name one of its keys"),
    (["params", "--config", "gpt-tiny", "--set", "model.norm=middle"], "expected one of pre"),
    (["params", "--config", "gpt-tiny", "--set", "mesh.data=-1", "--set", "mesh.fsdp=-1"],
     "at most one may be -1"),
    (["params", "--config", "gpt-tiny", "--set", "train.microbatches=5"],
     "train.microbatches=5 does not divide train.global_batch=32"),
    (["params"], "the following arguments are required: --config"),
    (["--host-devices", "-3", "params", "--config", "gpt-tiny"], "--host-devices -3"),
    (["eval", "--workdir", "{run}", "--tasks", "next_line", "--shots", "a"],
     "--shots 'a': expected integers (or max) separated by commas"),
    (["bench", "compile", "--config", "gpt-tiny", "--topology", "v9x:1x1"],
     "cannot describe TPU topology"),
    (["bench", "train", "--config", "gpt-tiny", "--steps", "0"], "--steps 0"),
    (["bench", "prepare", "--config", "gpt-tiny", "--workers", "0,2"], "--workers '0,2'"),
    (["bench", "prepare", "--config", "gpt-tiny", "--rounds", "0"], "--rounds 0"),
    (["params", "--config", "gpt-tiny", "--set", "model.family=rnn"],
     "model.family='rnn': expected one of gpt, bert, encdec"),
    (["params", "--config", "gpt-tiny", "--set", "train.objective=seq2seq"],
     "does not apply to the gpt family"),
    (["params", "--config", "gpt-tiny", "--set", "data.source=ftp:x"], "unknown data source"),
    (["params", "--config", "transformer-tiny", "--set", "optim.schedule=linear"],
     "expected one of cosine, rsqrt"),
    (["params", "--config", "transformer-tiny", "--set", "optim.label_smoothing=1"],
     "optim.label_smoothing=1.0: must lie in [0, 1)"),
    (["translate", "--workdir", "{run}", "--beam", "0", "--input", "{run}/config.json"],
     "--beam 0: expected a value from 1 to 64"),
    (["translate", "--workdir", "{run}", "--input", "/nonexistent/in.txt"],
     "--input /nonexistent/in.txt: no such file"),
    (["eval", "--workdir", "{run}", "--tasks", "bleu", "--beam", "0"],
     "--beam 0: expected a value from 1 to 64"),
    (["eval", "--workdir", "{run}", "--tasks", "bleu", "--limit", "-1"],
     "--limit must be >= 0"),
    (["frobnicate"], "argument command: invalid choice: 'frobnicate'"),
])
def test_bad_input_exits_2_with_one_line(args, needle, tmp_path, capsys):
    # "{run}": a run directory with a valid config.json, so that a bad flag, not a missing
    # directory, is what fails
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(get_preset("gpt-tiny").to_json())
    args = [a.replace("{run}", str(run)) for a in args]
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_mesh_that_does_not_match_devices(capsys):
    """8 simulated devices; a 3x1x1 mesh cannot cover them."""
    from scaling import sharding

    config = apply_overrides(get_preset("gpt-tiny"), ["mesh.data=3", "mesh.fsdp=1",
                                                      "mesh.tensor=1"])
    with pytest.raises(ConfigError, match="needs 3 devices but 8 are available"):
        sharding.make_mesh(config.mesh, config=config)
    config = apply_overrides(get_preset("gpt-tiny"), ["mesh.tensor=8", "mesh.fsdp=1",
                                                      "mesh.data=1"])
    with pytest.raises(ConfigError, match="model.n_heads=4 does not split evenly"):
        sharding.make_mesh(config.mesh, config=config)


def test_params_json(capsys):
    code, out, _ = run_cli(["params", "--config", "gpt2-small", "--json"], capsys)
    assert code == 0
    row = json.loads(out)
    # 124,439,808 released + 47 padded embedding rows x 768
    assert row["total"] == 124_439_808 + (50304 - 50257) * 768
    assert row["total"] - row["non_embedding"] == 50304 * 768 + 1024 * 768


def test_overrides_parse_types():
    c = validate(apply_overrides(get_preset("gpt-tiny"), [
        "train.steps=1e3", "optim.lr=0.5", "model.scan_layers=false", "data.source=text:x*"]))
    assert (c.train.steps, c.optim.lr, c.model.scan_layers, c.data.source) == (
        1000, 0.5, False, "text:x*")


def test_console_script_bad_preset_exit_code():
    """The real process: exit status 2 and no traceback."""
    proc = subprocess.run([sys.executable, "-m", "scaling.cli", "params", "--config", "nope"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("scaling: error: unknown preset 'nope'")


@pytest.mark.parametrize("args,needle", [
    (["sweep", "--spec", "/nonexistent/spec.yaml", "--workdir", "/tmp/x"], "does not exist"),
    (["fit", "--results", "/nonexistent/results.csv", "--out", "/tmp/x"], "results.csv"),
])
def test_laws_commands_bad_input_exit_2(args, needle, capsys):
    code, _, err = run_cli(args, capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, err


def test_hyphenated_aliases_keep_the_underscored_spellings():
    from scaling.cli import build_parser

    parse = build_parser().parse_args
    for flag, value in (("--init_from", "a"), ("--init-from", "a")):
        args = parse(["finetune", flag, value, "--task", "t", "--workdir", "w"])
        assert args.init_from == "a"
    for spelling in ("--stop_at", "--stop-at"):
        args = parse(["train", "--config", "gpt-tiny", spelling, "3", "--init-from", "r"])
        assert (args.stop_at, args.init_from) == (3, "r")


def _bare_env() -> dict:
    """The user's environment: no JAX_PLATFORMS (conftest sets one for this process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "XLA_FLAGS")}
    return dict(env, PYTHONPATH=os.pathsep.join(sys.path))


@pytest.mark.parametrize("args,lines", [
    (["params", "--config", "gpt-tiny"], 0),  # JAX initializes: no plugin may print
    (["params", "--config", "gpt-tiny", "--set", "model.d_model=abc"], 1),
    (["train"], 1),  # argparse's error, through the same single prefix
    (["bogus"], 1),
])
def test_quiet_by_default_and_one_error_prefix(args, lines):
    """With the test extra's libtpu installed on a host without a TPU, no accelerator
    plugin's initialization output reaches stderr; an error is one line, one prefix."""
    proc = subprocess.run([sys.executable, "-m", "scaling.cli", *args], capture_output=True,
                          text=True, env=_bare_env(), timeout=120)
    err = proc.stderr.splitlines()
    assert len(err) == lines, proc.stderr
    assert all(line.startswith("scaling: error: ") for line in err), proc.stderr
    assert all(line.count("scaling") == 1 for line in err), proc.stderr


def test_platform_choice_skips_absent_hardware(monkeypatch):
    """JAX_PLATFORMS names only platforms whose hardware is visible; a user's choice or
    JAX_FORCE_TPU_INIT is left alone."""
    from scaling import jax_platforms

    monkeypatch.setattr(jax_platforms.importlib.util, "find_spec",
                        lambda name: object() if name == "libtpu" else None)
    monkeypatch.setattr(jax_platforms, "tpu_chips_visible", lambda: False)
    env = {}
    jax_platforms.choose(env)
    assert env == {"JAX_PLATFORMS": "cpu"}
    monkeypatch.setattr(jax_platforms, "tpu_chips_visible", lambda: True)
    env = {}
    jax_platforms.choose(env)
    assert env == {"JAX_PLATFORMS": "tpu,cpu"}
    for preset in ({"JAX_PLATFORMS": "cuda"}, {"JAX_FORCE_TPU_INIT": "1"}):
        env = dict(preset)
        jax_platforms.choose(env)
        assert env == preset
