"""`scaling train --profile START:STOP` writes a trace; time to first step (fresh and resumed)
and goodput are reported (summary.json, sessions.jsonl); a bad --profile fails with one line
and exit code 2."""

import json

import pytest

from scaling.cli import main

SETS = ["model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.d_ff=64",
        "model.max_len=32", "model.vocab_size=384", "data.tokenizer=byte",
        "train.global_batch=8", "train.steps=4", "train.log_every=2", "train.eval_every=2",
        "train.eval_batches=1", "train.checkpoint_every=2"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for i in range(12):
        lines = [f"def f{i}_{j}(x):\n    return x * {j} + {i}\n" for j in range(20)]
        (root / f"doc{i:02d}.txt").write_text("".join(lines), encoding="utf-8")
    return root


@pytest.mark.parametrize("bad", ["5", "3:3", "4:2", "a:b", "-1:2"])
def test_bad_profile_exits_2_with_one_line(bad, capsys):
    assert main(["train", "--config", "gpt-tiny", "--workdir", "/nonexistent/x",
                 "--profile", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--profile" in err


def test_profile_trace_first_step_and_goodput(corpus, tmp_path):
    workdir = tmp_path / "run"
    args = ["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
            "--data", f"text:{corpus}/*.txt",
            *[a for s in SETS for a in ("--set", s)]]
    assert main([*args, "--stop_at", "2", "--profile", "0:1"]) == 0
    fresh = json.loads((workdir / "summary.json").read_text())
    traces = list((workdir / "profile").rglob("*.xplane.pb"))
    assert traces and traces[0].stat().st_size > 0
    assert main(args) == 0  # resumes at step 2
    resumed = json.loads((workdir / "summary.json").read_text())
    assert fresh["time"]["profile"] > 0 and "profile" not in resumed["time"]
    assert (fresh["resumed"], resumed["resumed"]) == (False, True)
    sessions = [json.loads(line)
                for line in (workdir / "sessions.jsonl").read_text().splitlines()]
    assert [(r["start_step"], r["end_step"], r["resumed"]) for r in sessions] == \
        [(0, 2, False), (2, 4, True)]
    assert [r["time_to_first_step"] for r in sessions] == \
        [fresh["time_to_first_step"], resumed["time_to_first_step"]]
    for summary in (fresh, resumed):
        t = summary["time"]
        assert 0 < summary["time_to_first_step"] < summary["wall_time"]
        assert summary["time_to_first_step"] == pytest.approx(t["startup"] + t["first_step"],
                                                              abs=1e-2)
        assert t["eval"] > 0 and t["checkpoint"] > 0 and t["training"] >= 0
        assert sum(t.values()) == pytest.approx(summary["wall_time"], abs=0.1)
        assert summary["goodput"] == pytest.approx(t["training"] / sum(t.values()), abs=1e-2)
