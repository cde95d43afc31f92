"""Approach 1 (lower envelope of learning curves), prediction intervals with run-to-run noise,
and the sweep spec `scaling fit --emit-sweep` writes. Oracles: closed-form laws (Chinchilla
eq. 4) evaluated with NumPy, and parameter counts from scaling.laws.accounting."""

import csv
import math

import numpy as np
import pytest

from scaling.cli import main as cli_main
from scaling.errors import UserError
from scaling.laws import accounting, emit, envelope, isoflop, predict, sweep

# L(N, D) = E + A / N^alpha + B / D^beta: Hoffmann et al. 2022's fitted values.
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def law(n, d):
    return E + A / np.asarray(n, float) ** ALPHA + B / np.asarray(d, float) ** BETA


def n_opt_exact(c):  # Chinchilla eq. 4: N_opt = G (C/6)^(beta/(alpha+beta))
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    return g * (c / 6) ** (BETA / (ALPHA + BETA))


def test_approach1_recovers_a_known_law_from_learning_curves():
    # 40 sizes over three decades; each run logs L(N, tokens so far) up to past 1e16 FLOP.
    curves = []
    for n in np.geomspace(1e4, 1e7, 40):
        tokens = np.geomspace(1e3, 1.01e16 / (6 * n), 120)
        curves.append(envelope.Curve(f"n{n:.0f}", n, 6 * n * tokens, law(n, tokens)))
    grid = np.geomspace(1e14, 1e16, 60)
    fit = envelope.fit_envelope(curves, grid=grid, n_boot=20, seed=0)
    assert fit.a == pytest.approx(BETA / (ALPHA + BETA), abs=0.02)
    assert fit.a + fit.b == pytest.approx(1.0)
    for c in (1e14, 1e15, 1e16):
        p = fit.predict(c)
        assert p["N_opt"] == pytest.approx(n_opt_exact(c), rel=0.15)
        assert p["D_opt"] == pytest.approx(c / (6 * p["N_opt"]))
        n = n_opt_exact(c)
        assert p["loss"] == pytest.approx(float(law(n, c / (6 * n))), rel=0.01)
    lo, hi = fit.intervals["a"]
    assert lo <= BETA / (ALPHA + BETA) <= hi and hi - lo < 0.15


def test_approach1_envelope_takes_the_lowest_curve_and_needs_two_sizes():
    low = envelope.Curve("low", 10.0, np.array([1.0, 4.0]), np.array([3.0, 2.0]))
    high = envelope.Curve("high", 20.0, np.array([2.0, 8.0]), np.array([2.2, 1.0]))
    n, loss = envelope.envelope([low, high], np.array([1.0, 2.0, 4.0, 8.0]))
    # at C=2: low interpolates in log C to 2.5, high is at 2.2; at C=4: low 2.0 vs high 1.6
    assert n.tolist() == [10.0, 20.0, 20.0, 20.0]
    assert loss == pytest.approx([3.0, 2.2, 1.6, 1.0])
    with pytest.raises(UserError, match="at least 2 run sizes on the lower envelope"):
        envelope.fit_envelope([low, high], grid=np.array([4.0, 8.0]))


def _isoflop_draw(rng, sigma, budgets):
    """Synthetic IsoFLOP runs from L = E + A/N^alpha + B/D^beta plus Gaussian noise."""
    n = np.concatenate([n_opt_exact(c) * np.geomspace(1 / 4, 4, 5) for c in budgets])
    c = np.repeat(budgets, 5)
    return n, c, law(n, c / (6 * n)) + rng.normal(0, sigma, n.size)


@pytest.mark.slow
def test_prediction_intervals_cover_new_runs_in_at_least_90_of_100_draws():
    sigma, budgets, held_out = 0.02, np.array([1e18, 3e18, 9e18]), 2.5e19
    covered, widths = 0, []
    for draw in range(100):
        rng = np.random.default_rng(draw)
        n, c, loss = _isoflop_draw(rng, sigma, budgets)
        fit = isoflop.fit_isoflop(n, c, loss, n_boot=100, seed=draw)
        # three seeds of one point, as a study estimates its run-to-run noise
        point_n, point_d = n[12], c[12] / (6 * n[12])
        seeds = law(point_n, point_d) + rng.normal(0, sigma, 2)
        reps = predict.replicate_noise(np.r_[n, point_n, point_n], np.r_[c / (6 * n), point_d,
                                       point_d], np.r_[loss, seeds])  # fmt: skip
        assert reps["dof"] == 2
        noise = predict.combine_noise(reps, None)
        (rec,) = predict.predictions({"2": fit}, [held_out], noise, 0.95, seed=draw)
        truth = law(rec["N_opt"], held_out / (6 * rec["N_opt"])) + rng.normal(0, sigma)
        lo, hi = rec["loss_interval"]
        covered += lo <= truth <= hi
        widths.append(hi - lo)
    assert covered >= 90, f"{covered} of 100 prediction intervals cover the new run"
    assert np.median(widths) < 20 * sigma  # covering by being uselessly wide does not count


def test_replicate_noise_is_the_pooled_standard_deviation():
    n = [1.0, 1.0, 1.0, 2.0, 2.0, 3.0]
    d = [5.0, 5.0, 5.0, 7.0, 7.0, 9.0]
    loss = [3.0, 3.2, 3.1, 2.0, 2.4, 1.0]
    ss = np.var([3.0, 3.2, 3.1]) * 3 + np.var([2.0, 2.4]) * 2
    reps = predict.replicate_noise(n, d, loss)
    assert reps["dof"] == 3 and reps["sigma"] == pytest.approx(math.sqrt(ss / 3))
    assert predict.replicate_noise([1.0, 2.0], [1.0, 1.0], [3.0, 3.0]) is None


def test_measured_runs_pick_the_nearest_size_and_the_best():
    recs = [{"budget": 1e13, "N_opt": 150e3, "loss": 3.2, "loss_interval": [3.0, 3.4]}]
    predict.attach_measured(recs, [95e3, 161e3, 239e3], [3.25, 3.21, 3.30],
                            [1e13, 1.0001e13, 0.999e13])  # fmt: skip
    m = recs[0]["measured"]
    assert (m["N"], m["best_N"], m["best_is_predicted"]) == (161e3, 161e3, True)
    assert m["miss_nats"] == pytest.approx(0.01)
    assert m["miss_percent"] == pytest.approx(100 * 0.01 / 3.2)
    assert m["inside_interval"]


SPEC = {"base": "gpt-tiny", "settings": {"train.global_batch": 16, "optim.warmup_steps": 5},
        "ladder": {"d_model": [32, 64, 96, 128, 192, 256], "aspect_ratio": 64, "head_dim": 32},
        "budgets": {1e13: [32, 64, 96], 3e13: [64, 96, 128]}, "lr": 3e-3}  # fmt: skip


def _ladder_n():
    runs = sweep.expand(dict(SPEC, budgets=[1e13]))
    return {r.config.model.d_model: accounting.param_counts(r.config.model)["total"]
            for r in runs}  # fmt: skip


def test_emit_sweep_writes_a_spec_scaling_sweep_accepts(tmp_path):
    import json

    # runs of a known law at the spec's own sizes, two budgets
    sizes = _ladder_n()
    rows = []
    for c, widths in ((1e13, [32, 64, 96]), (3e13, [64, 96, 128]), (9e13, [96, 128, 192])):
        for w in widths:
            n = sizes[w]
            rows.append({"name": f"d{w}-C{c:g}", "N": n, "C": c, "budget": c,
                         "loss": float(law(n, c / (6 * n)) * 1.0)})  # fmt: skip
    table = tmp_path / "results.csv"
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "sweep_spec.json").write_text(json.dumps(SPEC))
    out, spec_out = tmp_path / "fit", tmp_path / "check.yaml"
    assert cli_main(["fit", "--results", str(table), "--out", str(out), "--no-plots",
                     "--bootstrap", "0", "--starts", "8", "--predict", "3e14", "--emit-sweep",
                     str(spec_out)]) == 0  # fmt: skip
    emitted = sweep.load_spec(str(spec_out))
    runs = sweep.expand(emitted)  # scaling sweep accepts it
    pred = json.loads((out / "prediction.json").read_text())["predictions"]
    # oracle: the ladder width nearest each approach's N_opt in log N, and one either side
    widths = sorted(sizes, key=sizes.get)
    want = set()
    for r in pred:
        i = int(np.argmin([abs(math.log(sizes[w] / r["N_opt"])) for w in widths]))
        want |= set(widths[max(0, i - 1) : i + 2])
    assert {r.config.model.d_model for r in runs} == want
    for r in runs:
        n = accounting.param_counts(r.config.model)["total"]
        assert r.budget == 3e14 and r.tokens == pytest.approx(3e14 / (6 * n))
        assert r.config.optim.lr == 3e-3 and r.config.train.global_batch == 16
    assert cli_main(["sweep", "--spec", str(spec_out), "--workdir", str(tmp_path / "w"),
                     "--dry-run"]) == 0  # fmt: skip
    report = (out / "report.md").read_text()
    assert "## Held-out check ([prediction.md](prediction.md))" in report
    assert "(isoflops.png)" not in report  # --no-plots: no figure to show


def test_report_shows_the_held_out_check_and_its_isoflop_figure():
    from scaling.laws import report

    check = {"level": 0.95, "predictions": [
        {"budget": 1e13, "approach": "2", "N_opt": 184e3, "loss": 3.1789,
         "loss_interval": [2.969, 3.446],
         "measured": {"N": 161088.0, "loss": 3.1641, "miss_nats": -0.0148,
                      "miss_percent": -0.47, "inside_interval": True}},
        {"budget": 1e13, "approach": "3", "N_opt": 209e3, "loss": 3.4542,
         "loss_interval": [3.5, 3.645]}]}  # fmt: skip
    lines = report._check(check, ["isoflops.png"])
    assert (
        "| 1.000e+13 | approach 2 | 1.840e+05 | 3.1789 | [2.9690, 3.4460] | 1.611e+05 | "
        "3.1641 | -0.0148 (-0.47%) | yes |" in lines
    )
    assert (
        "| 1.000e+13 | approach 3 | 2.090e+05 | 3.4542 | [3.5000, 3.6450] | — | — | — | — |"
        in lines
    )
    assert any(line.startswith("![") and line.endswith("(isoflops.png)") for line in lines)
    assert report._check(None, ["isoflops.png"]) == []


def test_emit_sweep_without_a_spec_names_the_flag(tmp_path):
    table = tmp_path / "r.csv"
    table.write_text("N,D,loss\n" + "".join(f"{n},{d},{3 + n / 1e6}\n" for n in (1e4, 2e4, 4e4)
                                            for d in (1e6, 2e6)))  # fmt: skip
    with pytest.raises(UserError, match="name the fitted sweep's spec with --sweep-spec"):
        import argparse

        from scaling.commands import fit as fit_command

        args = argparse.ArgumentParser()
        fit_command.add_arguments(args)
        fit_command.run(args.parse_args(["--results", str(table), "--out",
                                              str(tmp_path / "o"), "--predict", "1e13",
                                              "--emit-sweep", "x.yaml"]))  # fmt: skip


def test_nearest_widths_clip_at_the_ends_of_the_ladder():
    sizes = [(8, 1e3), (16, 2e3), (32, 4e3)]
    assert emit.nearest_widths(sizes, [900.0]) == [8, 16]
    assert emit.nearest_widths(sizes, [2.1e3]) == [8, 16, 32]
    assert emit.nearest_widths(sizes, [1e5]) == [16, 32]


def test_fit_reads_learning_curves_beside_a_sweep_table_for_approach1(tmp_path):
    import json

    # a sweep's workdir: results.csv and one metrics.jsonl per run, eval losses from the law
    rows = []
    for c in (1e16, 3e16, 1e17):
        for f in np.geomspace(1 / 4, 4, 5):
            n = float(n_opt_exact(c) * f)
            steps, d = 50, c / (6 * n)
            name = f"n{n:.0f}-C{c:g}"
            run = tmp_path / name
            run.mkdir()
            evals = [{"step": s, "eval_loss": float(law(n, d * s / steps))} for s in (10, 30, 50)]
            (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evals))
            (run / "summary.json").write_text(json.dumps({"steps": steps, "end_step": steps}))
            rows.append({"name": name, "N": n, "D": d, "C": c, "budget": c, "steps": steps,
                         "best_eval_loss": float(law(n, d))})  # fmt: skip
    # a run still training (no finished summary) logs an impossibly low loss: left out
    (tmp_path / rows[0]["name"] / "summary.json").unlink()
    (tmp_path / rows[0]["name"] / "metrics.jsonl").write_text('{"step": 50, "eval_loss": 0.1}\n')
    table = tmp_path / "results.csv"
    with open(table, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "fit"
    assert cli_main(["fit", "--results", str(table), "--out", str(out), "--no-plots",
                     "--bootstrap", "0", "--starts", "8"]) == 0  # fmt: skip
    a1 = json.loads((out / "fit.json").read_text())["approach1"]
    assert a1["curves"] == 14 and set(a1["envelope_sizes"]) <= {r["N"] for r in rows}
    assert a1["C_range"] == pytest.approx([1e16, 1e17], rel=1e-6)
    assert a1["params"]["a"] == pytest.approx(BETA / (ALPHA + BETA), abs=0.15)
    assert "## Approach 1: lower envelope of learning curves" in (out / "report.md").read_text()
