"""Learning-rate transfer analysis: the best rate per (variant, width) from a sweep table."""

import json
import math

import numpy as np
import pytest

from scaling.errors import UserError
from scaling.laws import transfer


def test_best_lr_is_the_parabola_vertex_in_log_lr():
    lrs = [1e-3, 3e-3, 1e-2, 3e-2]
    losses = [(math.log(lr) - math.log(5e-3)) ** 2 + 4.0 for lr in lrs]  # exact parabola
    best, interior = transfer.best_lr(lrs, losses)
    assert interior and best == pytest.approx(5e-3, rel=1e-9)
    assert transfer.best_lr(lrs, [4.0, 4.1, 4.2, 4.3]) == (1e-3, False)  # at the edge
    assert transfer.best_lr(lrs, [5.0, 4.0, math.nan, 4.5]) == (3e-3, False)  # a diverged run


def test_optima_and_shift_per_variant(tmp_path):
    rows = ["name,variant,d_model,lr,best_eval_loss"]
    for variant, centre in (("mup", {32: 5e-3, 128: 5e-3}), ("sp", {32: 1e-2, 128: 2.5e-3})):
        for d, c in centre.items():
            for lr in np.geomspace(1e-3, 1e-1, 5):
                loss = 4 + (np.log(lr) - np.log(c)) ** 2
                rows.append(f"{variant}-{d}-{lr:g},{variant},{d},{lr},{loss}")
    path = tmp_path / "results.csv"
    path.write_text("\n".join(rows) + "\n")
    best = transfer.optima(transfer.load_grid(str(path)))
    assert [(b["variant"], b["d_model"]) for b in best] == [("mup", 32), ("mup", 128),
                                                            ("sp", 32), ("sp", 128)]  # fmt: skip
    shift = transfer.shifts(best)
    assert shift["mup"] == pytest.approx(0.0, abs=1e-9)
    assert shift["sp"] == pytest.approx(-2.0, abs=1e-9)  # 1e-2 -> 2.5e-3
    summary = transfer.write(str(path), str(tmp_path / "out"))
    assert summary["log2_shift_widest_over_narrowest"] == pytest.approx(shift)
    assert (tmp_path / "out" / "lr_transfer.png").stat().st_size > 0
    assert len(json.loads((tmp_path / "out" / "transfer.json").read_text())["runs"]) == 20
    one_rate = tmp_path / "one_rate.csv"
    one_rate.write_text("name,variant,d_model,lr,best_eval_loss\na,,64,0.005,3.5\n")
    with pytest.raises(UserError, match="needs 3\\+ rates per width"):
        transfer.optima(transfer.load_grid(str(one_rate)))
    (tmp_path / "bad.csv").write_text("name,lr,best_eval_loss\na,1,2\n")
    with pytest.raises(UserError, match="no column 'variant'"):
        transfer.load_grid(str(tmp_path / "bad.csv"))
