"""`scaling fit` on noise-free tables recovers the law that generated them: approach 3's
E, A, B, α, β and approach 2's a (Hoffmann et al. 2022 §3.2-3.3), through the command line.

The law is deliberately asymmetric (α = 0.30, β = 0.45, A ≠ B), so a fit that mixes up N and
D returns α and β (and a = β / (α + β) = 0.6 vs 0.4) exchanged.
"""

import json

import numpy as np
import pytest

from scaling import cli
from scaling.laws import parametric

LAW = {"E": 2.0, "A": 300.0, "B": 900.0, "alpha": 0.30, "beta": 0.45}
TRUE_A = LAW["beta"] / (LAW["alpha"] + LAW["beta"])  # N_opt ∝ C^a (Chinchilla eq. 4)


def law(n, d):
    return LAW["E"] + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]


def n_opt(c):
    """Chinchilla eq. 4 in closed form: N_opt = G (C/6)^a, G = (αA / βB)^(1/(α+β))."""
    s = LAW["alpha"] + LAW["beta"]
    g = (LAW["alpha"] * LAW["A"] / (LAW["beta"] * LAW["B"])) ** (1 / s)
    return g * (c / 6) ** TRUE_A


def _table(tmp_path, columns):
    """An IsoFLOP sweep: 5 budgets × 7 sizes spread 1.2 decades around each optimum."""
    lines = [",".join(columns)]
    for c in np.geomspace(1e17, 1e21, 5):
        for n in n_opt(c) * np.geomspace(10**-0.6, 10**0.6, 7):
            d = c / (6 * n)
            row = {"N": n, "D": d, "C": c, "loss": law(n, d)}
            lines.append(",".join(repr(float(row[k])) for k in columns))
    path = tmp_path / "sweep.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _fit(tmp_path, path, *flags):
    out = tmp_path / "fit"
    argv = [
        "fit",
        "--results",
        path,
        "--out",
        str(out),
        "--bootstrap",
        "2",
        "--starts",
        "16",
        "--no-plots",
        *flags,
    ]
    assert cli.main(argv) == 0
    return json.loads((out / "fit.json").read_text())


@pytest.mark.parametrize("columns", [("N", "D", "loss"), ("N", "C", "loss")])
def test_fit_recovers_the_generating_law(tmp_path, columns):
    """Tokens given directly, or derived from compute as D = C / 6N."""
    summary = _fit(tmp_path, _table(tmp_path, columns))
    p3 = summary["approach3"]["params"]
    for key, value in LAW.items():
        assert p3[key] == pytest.approx(value, rel=0.02), (key, p3[key])
    assert p3["a"] == pytest.approx(TRUE_A, abs=0.005)
    assert summary["approach2"]["params"]["a"] == pytest.approx(TRUE_A, abs=0.01)
    for pred in summary["approach3"]["predictions"]:
        assert pred["N_opt"] == pytest.approx(n_opt(pred["C"]), rel=0.05)
        assert pred["D_opt"] == pytest.approx(pred["C"] / (6 * n_opt(pred["C"])), rel=0.05)
        n, c = n_opt(pred["C"]), pred["C"]
        assert pred["loss"] == pytest.approx(law(n, c / (6 * n)), rel=1e-3)


def test_law_and_allocation_formulas():
    """predict_loss is the law; compute_optimal is Chinchilla eq. 4 and minimizes L on C."""
    values = [LAW[k] for k in parametric.PARAMS]
    n = np.array([1e6, 3e8, 1e11])
    d = np.array([2e9, 5e7, 1e12])
    np.testing.assert_allclose(parametric.predict_loss(values, n, d), law(n, d), rtol=1e-12)
    for c in (1e18, 1e22):
        opt = parametric.compute_optimal(values, c)
        assert opt["N_opt"] == pytest.approx(n_opt(c), rel=1e-9)
        assert opt["D_opt"] == pytest.approx(c / (6 * n_opt(c)), rel=1e-9)
        assert opt["loss"] == pytest.approx(law(n_opt(c), c / (6 * n_opt(c))), rel=1e-9)
        grid = opt["N_opt"] * np.array([0.9, 1.1])
        assert np.all(law(grid, c / (6 * grid)) > opt["loss"])


def test_fit_reads_renamed_columns(tmp_path):
    """--n-col / --d-col name the columns; exchanging them would exchange α and β."""
    path = _table(tmp_path, ("N", "D", "loss"))
    text = open(path).read().replace("N,D,loss", "params,tokens,loss", 1)
    open(path, "w").write(text)
    p3 = _fit(tmp_path, path, "--n-col", "params", "--d-col", "tokens")["approach3"]["params"]
    assert p3["alpha"] == pytest.approx(LAW["alpha"], rel=0.02)
    assert p3["beta"] == pytest.approx(LAW["beta"], rel=0.02)
