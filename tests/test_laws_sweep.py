"""Sweep specs: expansion into runs, resuming (skip finished), gathering the results table."""

import json
import math
import os

import pytest

from scaling.errors import UserError
from scaling.laws import accounting, results, sweep

TOKENS_PER_STEP = 16 * 128  # gpt-tiny context 128, global batch set to 16 below


def _spec(**extra):
    spec = {
        "base": "gpt-tiny",
        "settings": {"train.global_batch": 16, "optim.warmup_steps": 5},
        "ladder": {"d_model": [64, 128], "aspect_ratio": 32, "head_dim": 32},
    }
    spec.update(extra)
    return spec


def test_ladder_with_token_budgets():
    runs = sweep.expand(_spec(tokens=[1e5, 4e5], lr={"default": 1e-3, 64: 3e-3}))
    assert [r.name for r in runs] == ["L2-d64-D1e+05", "L2-d64-D4e+05",
                                      "L4-d128-D1e+05", "L4-d128-D4e+05"]  # fmt: skip
    m = runs[2].config.model
    assert (m.n_layers, m.d_model, m.n_heads, m.d_ff) == (4, 128, 4, 512)
    assert runs[0].config.train.steps == math.ceil(1e5 / TOKENS_PER_STEP)
    assert runs[1].config.train.steps == math.ceil(4e5 / TOKENS_PER_STEP)
    assert [r.config.optim.lr for r in runs] == [3e-3, 3e-3, 1e-3, 1e-3]
    assert runs[0].config.optim.warmup_steps == 5


def test_isoflop_budgets_give_tokens_c_over_6n():
    runs = sweep.expand(_spec(budgets=[1e13], models=[{"n_layers": 1, "d_model": 32,
                                                       "n_heads": 1, "d_ff": 64}]))  # fmt: skip
    assert len(runs) == 3
    for r in runs:
        n = accounting.param_counts(r.config.model)["total"]
        assert 6 * n * r.tokens == pytest.approx(1e13)
        assert r.budget == 1e13
        assert r.config.train.steps == math.ceil(r.tokens / TOKENS_PER_STEP)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"ladder": {"d_model": [64]}, "tokens": [1]}, "'base'.*is required"),
        (_spec(), "exactly one of 'tokens'"),
        (_spec(tokens=[1e5], budgets=[1e12]), "exactly one of 'tokens'"),
        (_spec(tokens=[1e5], epochs=2), "unknown key 'epochs'"),
        (_spec(tokens=[-5]), "spec tokens: every value must be positive"),
        (_spec(tokens=[1e5], ladder={"d_model": [48], "head_dim": 32}), "not a multiple"),
        (_spec(tokens=[1e5], settings={"train.nope": 1}), "unknown key 'nope'"),
        ({"base": "gpt-tiny", "tokens": [1e5]}, "list model shapes"),
    ],
)
def test_bad_specs_raise_user_error(spec, message):
    with pytest.raises(UserError, match=message):
        sweep.expand(spec)


def test_spec_files_yaml_json_and_parse_errors(tmp_path):
    (tmp_path / "s.yaml").write_text("base: gpt-tiny\ntokens: [1.0e+5]\nladder:\n  d_model: [64]\n")
    assert sweep.load_spec(str(tmp_path / "s.yaml"))["tokens"] == [1e5]
    (tmp_path / "s.json").write_text(json.dumps(_spec(tokens=[1e5])))
    assert len(sweep.expand(sweep.load_spec(str(tmp_path / "s.json")))) == 2
    (tmp_path / "bad.yaml").write_text("base: [unclosed\n")
    with pytest.raises(UserError, match="cannot parse the spec"):
        sweep.load_spec(str(tmp_path / "bad.yaml"))


def _fake_train(calls):
    def train(config_dict, run_dir):
        calls.append(os.path.basename(run_dir))
        steps = config_dict["train"]["steps"]
        preempted = "D4e+05" in run_dir and len(calls) == 2  # the 2nd run is interrupted once
        end = steps // 2 if preempted else steps
        summary = {"final_eval_loss": 3.0, "best_eval_loss": 2.9, "steps": steps,
                   "end_step": end, "preempted": preempted, "wall_time": 1.5}  # fmt: skip
        with open(os.path.join(run_dir, "summary.json"), "w") as f:
            json.dump(summary, f)
        return summary

    return train


def test_run_sweep_skips_finished_runs_and_gathers_table(tmp_path):
    runs = sweep.expand(_spec(tokens=[1e5, 4e5]))
    calls = []
    trained = sweep.run_sweep(runs, str(tmp_path), train_fn=_fake_train(calls))
    assert trained == ["L2-d64-D1e+05", "L2-d64-D4e+05"]  # preempted in the 2nd: stop there
    again = sweep.run_sweep(runs, str(tmp_path), train_fn=_fake_train(calls))
    assert again == [r.name for r in runs[1:]]  # the interrupted run resumes, then the rest
    assert sweep.run_sweep(runs, str(tmp_path), train_fn=_fake_train(calls)) == []
    rows = sweep.gather_results(runs, str(tmp_path))
    assert len(rows) == 4
    row = rows[1]
    n = accounting.param_counts(runs[1].config.model)
    assert (row["N"], row["N_non_emb"]) == (n["total"], n["non_embedding"])
    assert row["D"] == runs[1].config.train.steps * TOKENS_PER_STEP
    assert row["C"] == pytest.approx(6 * row["N"] * row["D"])
    table = results.load_results(str(tmp_path / "results.csv"), loss_col="best_eval_loss")
    assert len(table) == 4


def test_lr_grid_and_variants_multiply_runs_in_order():
    spec = _spec(tokens=[1e5], lrs=[1e-3, 1e-2],
                 variants={"mup": {"model.mup_base_width": 64}, "sp": {}})  # fmt: skip
    runs = sweep.expand(spec)
    assert [r.name for r in runs] == [
        f"{v}-L{n}-d{d}-lr{lr}-D1e+05"
        for v in ("mup", "sp") for n, d in ((2, 64), (4, 128)) for lr in ("0.001", "0.01")
    ]  # fmt: skip
    assert [r.config.optim.lr for r in runs[:2]] == [1e-3, 1e-2]
    assert {r.config.model.mup_base_width for r in runs[:4]} == {64}
    assert {r.config.model.mup_base_width for r in runs[4:]} == {0}
    assert [r.variant for r in runs] == ["mup"] * 4 + ["sp"] * 4


def test_budgets_with_their_own_widths():
    runs = sweep.expand(_spec(budgets={1e12: [64], "2e12": [64, 128]}))
    assert [(r.config.model.d_model, r.budget) for r in runs] == [(64, 1e12), (64, 2e12),
                                                                  (128, 2e12)]  # fmt: skip
    with pytest.raises(UserError, match="d_model=96, which no model shape has"):
        sweep.expand(_spec(budgets={1e12: [64, 96]}))
    with pytest.raises(UserError, match="budget: \\[d_model"):
        sweep.expand(_spec(budgets={1e12: "wide"}))


def _gpt_total_params(d: int, n_layers: int, vocab: int = 2048, context: int = 128) -> int:
    """GPT-2 block by hand: tied token + learned position tables; per layer q, k, v, o and the
    4d MLP (12 d^2 weights, 9 d biases) and two layer norms (4 d); a final layer norm (2 d)."""
    return (vocab + context) * d + n_layers * (12 * d * d + 9 * d + 4 * d) + 2 * d


def test_cpu_isoflop_spec_expands_to_the_intended_grid():
    """configs/sweeps/gpt-cpu-isoflop.yaml: 3 budgets x 5 widths, each budget's widths
    centred on its own optimum, tokens = C / 6N, one μP base rate."""
    spec = sweep.load_spec(os.path.join(os.path.dirname(__file__), os.pardir, "configs",
                                        "sweeps", "gpt-cpu-isoflop.yaml"))  # fmt: skip
    runs = sweep.expand(spec)
    grid = {(r.budget, r.config.model.d_model) for r in runs}
    budgets = sorted({r.budget for r in runs})
    assert len(runs) == len(grid) == 15 and len(budgets) == 3
    for budget in budgets:
        widths = sorted(d for b, d in grid if b == budget)
        assert widths == sorted(int(w) for w in spec["budgets"][budget]) and len(widths) == 5
    tokens_per_step = spec["settings"]["train.global_batch"] * 128
    for r in runs:
        m = r.config.model
        n = _gpt_total_params(m.d_model, m.n_layers)
        assert accounting.param_counts(m)["total"] == n
        assert r.tokens == pytest.approx(r.budget / (6 * n))
        assert r.config.train.steps == math.ceil(r.tokens / tokens_per_step)
        assert r.config.optim.lr == spec["lr"]  # one rate: μP scales it per width
        assert m.mup_base_width == spec["settings"]["model.mup_base_width"]
    assert {r.config.mesh.data for r in runs} == {8}
