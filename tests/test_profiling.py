"""`scaling train --profile START:STOP` writes a trace; time to first step (fresh and resumed)
and goodput are reported (summary.json, sessions.jsonl): `check_restart_cost`, run on the
short mixture run of tests/test_data_mixture.py; a bad --profile fails with one line and
exit code 2."""

import json

import pytest

from scaling.cli import main


@pytest.mark.parametrize("bad", ["5", "3:3", "4:2", "a:b", "-1:2"])
def test_bad_profile_exits_2_with_one_line(bad, tmp_path, capsys):
    # --profile=VALUE: "-1:2" as its own word would read as an option (argparse's error)
    assert main(["train", "--config", "gpt-tiny", "--workdir", str(tmp_path / "run"),
                 f"--profile={bad}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"--profile {bad!r}: expected START:STOP with 0 <= START < STOP" in err, err


def check_restart_cost(workdir, fresh: dict) -> None:
    """After a session with --stop_at 2 --profile 0:1 (summary `fresh`) and its resume to step
    4 in `workdir` (tests/test_data_mixture.py runs them, on one compilation)."""
    resumed = json.loads((workdir / "summary.json").read_text())
    traces = list((workdir / "profile").rglob("*.xplane.pb"))
    assert len(traces) == 1 and traces[0].stat().st_size > 0
    assert (fresh["resumed"], resumed["resumed"]) == (False, True)
    assert fresh["time"]["profile"] > 0 and "profile" not in resumed["time"]
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
        # the phases partition the session (test_clock_phases_partition_the_wall_time, on a
        # fake clock); wall_time is read just before them, so it can only be smaller
        assert sum(t.values()) >= summary["wall_time"] - 0.01  # 3-decimal rounding
        assert summary["goodput"] == pytest.approx(t["training"] / sum(t.values()), abs=1e-2)


def test_clock_phases_partition_the_wall_time(monkeypatch):
    """On a fake clock: startup, first_step, the hooks, training and finish add up to the
    wall time exactly; training-proper hooks count as training; goodput = training / wall."""
    from scaling.train import profiling

    now = [100.0]
    monkeypatch.setattr(profiling.time, "perf_counter", lambda: now[0])
    monkeypatch.setattr("jax.block_until_ready", lambda x: x)
    clock = profiling.Clock(t0=90.0)
    clock.start_loop()  # startup 10
    now[0] = 130.0
    assert clock.first_step_done(None) == 40.0  # first step 30
    clock.add("eval", 7.0)
    clock.add("checkpoint", 3.0)
    clock.add("eval", 1.0)
    clock.add("log", 5.0)  # training proper: stays in training
    now[0] = 190.0
    out = clock.summary(loop_end=180.0)  # finish 10
    assert out["time"] == {"startup": 10.0, "first_step": 30.0, "eval": 8.0, "checkpoint": 3.0,
                           "training": 50.0 - 11.0, "finish": 10.0}
    assert sum(out["time"].values()) == 190.0 - 90.0
    assert out["goodput"] == round(39.0 / 100.0, 4)
