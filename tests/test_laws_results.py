"""Results tables: reading CSV/JSONL, deriving D from C, and one clear line for bad files."""

import argparse
import json
import os

import numpy as np
import pytest

from scaling.commands import fit as fit_command
from scaling.errors import UserError
from scaling.laws import fit, results


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_with_compute_only_derives_tokens(tmp_path):
    path = _write(tmp_path, "r.csv", "size,flop,l\n1e6,6e12,3.5\n2e6,2.4e13,3.2\n")
    table = results.load_results(path, n_col="size", c_col="flop", loss_col="l")
    np.testing.assert_allclose(table.d, [1e6, 2e6])  # D = C / (6N)
    np.testing.assert_allclose(table.c, [6e12, 2.4e13])


def test_jsonl_with_tokens_derives_compute(tmp_path):
    rows = [{"N": 1e6, "D": 2e7, "loss": 3.0}, {"N": 4e6, "D": 1e7, "loss": 2.9}]
    path = _write(tmp_path, "r.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    table = results.load_results(path)
    np.testing.assert_allclose(table.c, [6 * 1e6 * 2e7, 6 * 4e6 * 1e7])


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.csv", "", "the file is empty"),
        ("b.csv", "N,D,loss\n", "no data rows"),
        ("c.csv", "N,D,los\n1,2,3\n", "no column 'loss'.*--loss-col"),
        ("d.csv", "N,loss\n1,3\n", "neither a tokens column 'D' nor a compute column 'C'"),
        ("e.csv", "N,D,loss\n1,2,3\n1,2,abc\n", "line 3: column 'loss' value 'abc' is not a"),
        ("f.csv", "N,D,loss\n1,-2,3\n", "line 2: column 'D' value '-2' must be positive"),
        ("g.csv", "N,D,loss\n1,2\n", "line 2: column 'loss' value None is not a number"),
        ("h.jsonl", '{"N": 1, "D": 2, "loss": 3}\n{"N": 1,\n', "line 2: not valid JSON"),
        ("i.jsonl", "[1, 2, 3]\n", "line 1: expected a JSON object"),
        ("j.csv", "N,D,loss\n1,2,nan\n", "must be positive and finite"),
    ],
)
def test_bad_results_files_raise_one_line_user_error(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    with pytest.raises(UserError, match=message) as info:
        results.load_results(path)
    assert "\n" not in str(info.value)


def test_missing_file_and_bad_drop(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        results.load_results(str(tmp_path / "nope.csv"))
    path = _write(tmp_path, "r.csv", "N,D,loss\n1,2,3\n2,2,4\n3,2,5\n")
    table = results.load_results(path)
    assert results.drop_highest_loss(table, 2).loss.tolist() == [3.0]
    with pytest.raises(UserError, match="--drop-highest-loss 3"):
        results.drop_highest_loss(table, 3)


def _isoflop_table(tmp_path):
    """A small IsoFLOP sweep from L = 1.7 + 400/N^0.34 + 400/D^0.28, with run directories."""
    lines = ["N,C,loss"]
    for c in (1e17, 1e18, 1e19):
        for n in np.geomspace(c**0.5 / 100, c**0.5 / 3, 5):
            d = c / (6 * n)
            lines.append(f"{n},{c},{1.7 + 400 / n**0.34 + 400 / d**0.28}")
    for run in ("run-a", "run-b"):
        os.makedirs(tmp_path / "runs" / run)
        rows = [{"step": s, "tokens": 1000 * s, "loss": 5 / s**0.1} for s in (1, 10, 100)]
        rows.append({"step": 100, "tokens": 100_000, "eval_loss": 3.1})
        (tmp_path / "runs" / run / "metrics.jsonl").write_text(
            "\n".join(json.dumps(r) for r in rows) + "\n"
        )
    return _write(tmp_path, "sweep.csv", "\n".join(lines) + "\n")


def _parse(argv):
    parser = argparse.ArgumentParser()
    fit_command.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.slow
def test_fit_command_writes_fit_json_report_and_figures(tmp_path, capsys):
    path = _isoflop_table(tmp_path)
    out = tmp_path / "out"
    args = _parse(
        [
            "--results",
            path,
            "--out",
            str(out),
            "--c-col",
            "C",
            "--budgets",
            "1e20",
            "--bootstrap",
            "4",
            "--starts",
            "8",
            "--runs",
            str(tmp_path / "runs"),
        ]
    )
    assert fit_command.run(args) == 0
    summary = json.loads((out / "fit.json").read_text())
    assert set(summary["approach3"]["params"]) >= {"E", "A", "B", "alpha", "beta", "a", "G"}
    assert summary["approach3"]["predictions"][0]["C"] == 1e20
    assert len(summary["approach2"]["profiles"]) == 3
    report = (out / "report.md").read_text()
    assert "Approach 3" in report and "1.000e+20" in report
    for name in ("loss_vs_N", "loss_vs_D", "loss_vs_C", "isoflops", "learning_curves",
                 "optimal_allocation"):
        assert (out / f"{name}.png").stat().st_size > 0
        assert (out / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    assert "approach 3: E=" in capsys.readouterr().out


def test_fit_command_rejects_bad_flags(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _parse(["--results", "x", "--out", "y", "--budgets", "1e21,abc"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --budgets: '1e21,abc': expected numbers like 1e21,1e23" in err, err
    path = _isoflop_table(tmp_path)
    with pytest.raises(UserError, match="--bootstrap -1"):
        fit_command.run(_parse(["--results", path, "--out", "o", "--bootstrap", "-1"]))
    with pytest.raises(UserError, match="no column 'params'.*--n-col"):
        fit_command.run(_parse(["--results", path, "--out", "o", "--n-col", "params"]))


def _sweep_table(tmp_path):
    """A `scaling sweep` results.csv (its columns, drifting C, a budget column) from
    L = 1.7 + 400/N^0.34 + 400/D^0.28, with a run directory per row beside it."""
    header = ("name,N,N_non_emb,D,C,budget,d_model,n_layers,lr,mup_base_width,variant,"
              "final_eval_loss,best_eval_loss,wall_time,steps,run_dir")  # fmt: skip
    lines = [header]
    for c in (1e17, 1e18, 1e19):
        for i, n in enumerate(np.geomspace(c**0.5 / 100, c**0.5 / 3, 5)):
            d = round(c / (6 * n), -3)  # whole steps: C drifts from the budget
            loss = 1.7 + 400 / n**0.34 + 400 / d**0.28
            name = f"s{i}-C{c:.0e}"
            lines.append(f"{name},{n:.0f},{n / 2:.0f},{d},{6 * n * d},{c},64,2,0.003,64,,"
                         f"{loss + 0.01},{loss},12.5,100,{tmp_path / name}")  # fmt: skip
            os.makedirs(tmp_path / name)
            (tmp_path / name / "metrics.jsonl").write_text(
                json.dumps({"step": 10, "tokens": 1e4, "loss": 5.0}) + "\n")
    return _write(tmp_path, "results.csv", "\n".join(lines) + "\n")


def test_fit_defaults_read_a_sweep_table_without_column_flags(tmp_path, capsys):
    path = _sweep_table(tmp_path)
    args = _parse(["--results", path, "--out", str(tmp_path / "fit"), "--bootstrap", "2",
                   "--starts", "4", "--no-plots"])  # fmt: skip
    assert fit_command.run(args) == 0
    assert (args.loss_col, args.budget_col, args.runs) == ("best_eval_loss", "budget",
                                                            str(tmp_path))  # fmt: skip
    summary = json.loads((tmp_path / "fit" / "fit.json").read_text())
    assert [p["C"] for p in summary["approach3"]["predictions"]] == [1e17, 1e18, 1e19, 1e20,
                                                                     1e21]  # fmt: skip
    assert len(summary["approach2"]["profiles"]) == 3
    assert summary["comparison"]["a_approach2"] == summary["approach2"]["params"]["a"]
    assert summary["data"]["budgets"] == [1e17, 1e18, 1e19]
    report = (tmp_path / "fit" / "report.md").read_text()
    for heading in ("## Summary", "## Limits of the data", "N_opt ∝ C^a",
                    "Compute-optimal allocation (approach 2)"):
        assert heading in report, heading
    assert fit.default_budgets([3e11, 4e12]) == (1e12, 1e13, 1e14, 1e15)
    # A table without any loss column names the flag.
    bad = _write(tmp_path, "bad.csv", "N,D,score\n1,2,3\n")
    with pytest.raises(UserError, match="no loss column.*--loss-col"):
        fit_command.run(_parse(["--results", bad, "--out", str(tmp_path / "o")]))
