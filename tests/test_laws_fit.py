"""Scaling-law fitters on synthetic runs drawn from known laws (no external data)."""

import numpy as np
import pytest

from scaling.laws import isoflop, parametric, powerlaw

# Hoffmann et al. 2022 eq. 10's published law, used as a known truth.
TRUE = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _true_optimum(compute):
    """N_opt of TRUE at `compute`, minimizing L(N, C/6N) by brute force on a fine grid."""
    n = np.geomspace(1e5, 1e14, 200_001)
    d = compute / (6 * n)
    loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]
    return n[np.argmin(loss)]


def isoflop_runs(seed=0, noise=0.004, budgets=np.geomspace(1e18, 1e21, 4), sizes=9):
    """IsoFLOP grid: each budget x sizes spread 1.6 decades around its optimum; D = C/6N."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        for n in _true_optimum(c) * np.geomspace(10**-0.8, 10**0.8, sizes):
            d = c / (6 * n)
            loss = TRUE["E"] + TRUE["A"] / n ** TRUE["alpha"] + TRUE["B"] / d ** TRUE["beta"]
            rows.append((n, d, c, loss * np.exp(noise * rng.standard_normal())))
    return tuple(np.array(col) for col in zip(*rows, strict=True))


def test_approach3_recovers_known_law_inside_bootstrap_intervals():
    n, d, _, loss = isoflop_runs()
    fit = parametric.fit_parametric(n, d, loss, n_boot=40, seed=0, starts=16)
    for key, value in TRUE.items():
        lo, hi = fit.intervals[key]
        assert lo <= value <= hi, (key, value, lo, hi)
        assert fit.params()[key] == pytest.approx(value, rel=0.15)
    true_a = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])
    lo, hi = fit.intervals["a"]
    assert lo <= true_a <= hi
    assert fit.a == pytest.approx(true_a, abs=0.02)


def test_approach3_compute_optimal_allocation_matches_brute_force():
    values = [TRUE[k] for k in parametric.PARAMS]
    for c in (1e20, 1e23):
        opt = parametric.compute_optimal(values, c)
        assert opt["N_opt"] == pytest.approx(_true_optimum(c), rel=1e-3)
        assert 6 * opt["N_opt"] * opt["D_opt"] == pytest.approx(c)


def test_approach3_prediction_intervals_bracket_point():
    n, d, _, loss = isoflop_runs(seed=1)
    fit = parametric.fit_parametric(n, d, loss, n_boot=10, seed=0, starts=8)
    pred = parametric.predict_budget(fit, 1e23)
    for key in ("N_opt", "D_opt", "loss"):
        lo, hi = pred[f"{key}_ci"]
        assert lo <= pred[key] <= hi


def test_fits_are_deterministic_for_a_seed():
    n, d, _, loss = isoflop_runs(seed=2)
    runs = [parametric.fit_parametric(n, d, loss, n_boot=6, seed=s, starts=8) for s in (3, 3, 4)]
    assert runs[0].params() == runs[1].params()
    assert runs[0].intervals == runs[1].intervals
    assert runs[0].intervals != runs[2].intervals


def test_approach2_recovers_known_exponent():
    n, _, c, loss = isoflop_runs(noise=0.002, budgets=np.geomspace(1e17, 1e22, 6))
    fit = isoflop.fit_isoflop(n, c, loss, n_boot=30, seed=0)
    true_a = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])
    assert len(fit.profiles) == 6
    assert fit.a == pytest.approx(true_a, abs=0.015)
    assert fit.a + fit.b == pytest.approx(1.0)  # D_opt = C / (6 N_opt)
    lo, hi = fit.intervals["a"]
    assert lo < fit.a < hi


def test_approach2_recovers_a_from_windows_of_a_fixed_size_ladder():
    """As a sweep spec runs it: one ladder of sizes a factor 1.5 apart, each budget training
    the 5 sizes nearest its optimum (so the optimum sits anywhere inside the window), noisy
    losses (0.1%). The known law has a = beta / (alpha + beta) = 0.6, not Chinchilla's.
    Noise-free the fit gives 0.600; with 0.1% noise seeds 0-5 give 0.596-0.611, each 95%
    interval holding 0.6 (0.2% noise and 4 budgets moved it by up to 0.05)."""
    e, a_, b_, alpha, beta = 2.0, 300.0, 900.0, 0.30, 0.45
    true_a = beta / (alpha + beta)
    ladder = 1e6 * 1.5 ** np.arange(45)
    rng = np.random.default_rng(1)
    n_rows, c_rows, loss_rows = [], [], []
    for c in np.geomspace(1e17, 1e21, 5):
        grid = np.geomspace(1e5, 1e13, 100_001)
        law = e + a_ / grid**alpha + b_ / (c / (6 * grid)) ** beta
        n_opt = grid[np.argmin(law)]
        window = ladder[np.argsort(np.abs(np.log(ladder / n_opt)))[:5]]
        for n in window:
            loss = e + a_ / n**alpha + b_ / (c / (6 * n)) ** beta
            n_rows.append(n), c_rows.append(c)
            loss_rows.append(loss * np.exp(0.001 * rng.standard_normal()))
    fit = isoflop.fit_isoflop(n_rows, c_rows, loss_rows, n_boot=40, seed=0)
    assert len(fit.profiles) == 5
    assert fit.a == pytest.approx(true_a, abs=0.03)
    lo, hi = fit.intervals["a"]
    assert lo <= true_a <= hi
    pred = fit.predict(1e22)
    assert pred["N_opt_ci"][0] <= pred["N_opt"] <= pred["N_opt_ci"][1]
    assert 6 * pred["N_opt"] * pred["D_opt"] == pytest.approx(1e22)


def test_approach2_groups_drifting_budgets_and_rejects_too_few():
    labels = isoflop.group_budgets([1e18, 1.02e18, 0.99e18, 1e19, 1.03e19])
    assert labels.tolist() == [0, 0, 0, 1, 1]
    n, _, c, loss = isoflop_runs(budgets=[1e19])
    with pytest.raises(isoflop.FitError, match="at least 2 IsoFLOP budgets"):
        isoflop.fit_isoflop(n, c, loss)


def test_power_law_with_irreducible_loss():
    rng = np.random.default_rng(0)
    x = np.geomspace(1e6, 1e10, 15)
    loss = (1.5 + (3e5 / x) ** 0.3) * np.exp(0.001 * rng.standard_normal(15))
    fit = powerlaw.fit_power_law(x, loss, envelope=False, n_boot=8, seed=0)
    assert fit.alpha == pytest.approx(0.3, rel=0.05)
    assert fit.E == pytest.approx(1.5, rel=0.02)
    assert fit.x_c == pytest.approx(3e5, rel=0.3)
    lo, hi = fit.intervals["alpha"]
    assert lo <= fit.alpha <= hi


def test_pure_power_law_is_exact_on_noiseless_data():
    x = np.geomspace(1e7, 1e9, 5)
    fit = powerlaw.fit_power_law(x, (8.8e13 / x) ** 0.076, irreducible=False)  # Kaplan eq. 1.1
    assert fit.alpha == pytest.approx(0.076, rel=1e-9)
    assert fit.x_c == pytest.approx(8.8e13, rel=1e-6)


def test_lower_envelope_keeps_only_improving_runs():
    x = np.array([1, 2, 3, 4, 5, 5])
    loss = np.array([5.0, 6.0, 4.0, 4.5, 3.0, 2.0])
    assert sorted(powerlaw.lower_envelope(x, loss).tolist()) == [0, 2, 5]
