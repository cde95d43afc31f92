"""The evaluator registry (scaling/eval/registry.py): names in, evaluators out; the commands
build the evaluations the training loop runs (the loop imports no evaluator), and greedy BLEU
logged in training equals `scaling eval --tasks bleu` on the same checkpoint."""

import json
import random

import pytest
from helpers import word_corpus
from test_imports import MODULES, _imports

from scaling.cli import main
from scaling.errors import UserError
from scaling.eval import registry
from scaling.train.hooks import Evaluation

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
TINY = ["model.n_layers=1", "model.d_model=32", "model.n_heads=4", "model.d_ff=64",
        "model.max_len=32", "model.vocab_size=384", "data.tokenizer=byte",
        "train.global_batch=8", "train.log_every=1", "train.eval_every=2",
        "train.eval_batches=1", "train.checkpoint_every=2", "optim.warmup_steps=2",
        "train.steps=3"]


def _sets(items):
    return [a for item in items for a in ("--set", item)]


def _rows(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_unknown_names_are_one_line_naming_the_evaluators():
    with pytest.raises(UserError) as e:
        registry.get("rouge")
    assert "'rouge'" in str(e.value)
    assert all(name in str(e.value) for name in ("bleu", "fewshot", "finetune", "lm_eval"))
    with pytest.raises(UserError, match="unknown task 'lambada'.*bleu:PATH.tsv.*finetune"):
        registry.for_item("lambada")


@pytest.mark.parametrize("item, name", [("bleu", "bleu"), ("bleu:test.tsv", "bleu"),
                                        ("finetune", "finetune"), ("next_line", "fewshot"),
                                        ("2D+", "fewshot"), ("kv_recall", "fewshot"),
                                        ("jsonl:x.jsonl", "fewshot"), ("t.yaml", "fewshot")])
def test_each_tasks_item_goes_to_its_evaluator(item, name):
    assert registry.for_item(item).name == name


def test_a_config_chooses_its_training_evaluations():
    from scaling.config import ConfigError, apply_overrides
    from scaling.presets import get_preset

    gpt = get_preset("gpt-tiny")
    assert registry.training_evaluations(gpt) == []
    chosen = registry.training_evaluations(apply_overrides(gpt, ["train.eval_tasks=2D+@1"]))
    assert [e.name for e in chosen] == ["fewshot"]
    encdec = apply_overrides(get_preset("transformer-tiny"), ["train.eval_bleu=8"])
    assert [e.name for e in registry.training_evaluations(encdec)] == ["bleu"]
    task = apply_overrides(gpt, ["train.objective=gpt_classify", "train.eval_tasks=copy"])
    assert [e.name for e in registry.training_evaluations(task)] == ["task_eval"]
    with pytest.raises(ConfigError, match="train.eval_tasks: 'lambada'"):
        registry.training_evaluations(apply_overrides(gpt, ["train.eval_tasks=lambada"]))


def test_a_bad_eval_task_fails_the_command_in_one_line(tmp_path, capsys):
    assert main(["train", "--config", "gpt-tiny", "--workdir", str(tmp_path / "run"),
                 "--set", "train.eval_tasks=2D+,lambada@2"]) == 2
    err = capsys.readouterr().err
    assert "train.eval_tasks: 'lambada@2'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # before any run directory or device work


def test_the_training_loop_imports_no_evaluator():
    """train/ is below eval/: the commands pass evaluations in (lazy imports count)."""
    found = {m: sorted(t for t in _imports(m) if t.startswith("scaling.eval"))
             for m in MODULES if m.startswith("scaling.train")}
    assert not {m: t for m, t in found.items() if t}
    # the walker sees such an import: the command does import the registry
    assert "scaling.eval.registry" in _imports("scaling.commands.train")


@pytest.mark.slow
def test_a_registered_evaluator_is_run_by_train_and_by_eval(tmp_path, monkeypatch, capsys):
    """An evaluator the loop cannot know by name: its rows reach metrics.jsonl at every
    evaluation with the parameters as trained, and `scaling eval --tasks` reaches it."""
    import jax
    import numpy as np

    monkeypatch.setattr(registry, "ENTRIES", list(registry.ENTRIES))
    seen = []

    def start(run):
        def evaluate(state, step):
            leaves = jax.tree_util.tree_leaves(state.params)
            return {"probe_params": sum(int(np.size(x)) for x in leaves),
                    "probe_step": int(state.step)}

        return evaluate

    def command(workdir, items, args, shots):
        seen.append((workdir, items, shots, args.limit))
        return [{"task": i} for i in items]

    registry.register(registry.Entry("probe", "probe:N", lambda item: item.startswith("probe:"),
                                     command, lambda config: Evaluation("probe", start)))
    with pytest.raises(ValueError, match="twice"):
        registry.register(registry.Entry("probe", "again"))

    data = word_corpus(tmp_path, 4, 0, WORDS, lines=40)
    workdir = tmp_path / "run"
    assert main(["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
                 *_sets(data + TINY)]) == 0
    summary = json.loads((workdir / "summary.json").read_text())
    probes = [r for r in _rows(workdir) if "probe_params" in r]
    assert [(r["step"], r["probe_step"]) for r in probes] == [(2, 2), (3, 3)]  # every 2, last
    assert all(r["probe_params"] == summary["params_total"] for r in probes)
    assert "probe" in summary["time"]  # its time is an evaluation's, not training's

    assert main(["eval", "--workdir", str(workdir), "--tasks", "probe:1,probe:2",
                 "--shots", "0,3", "--limit", "5"]) == 0
    assert seen == [(str(workdir), ["probe:1", "probe:2"], [0, 3], 5)]


STEPS = ["model.max_len=32", "train.seq_len=16", "train.steps=2", "train.global_batch=8",
         "train.eval_every=2", "train.checkpoint_every=2", "train.log_every=1",
         "train.eval_batches=1", "train.eval_bleu=6", "optim.warmup_steps=1",
         "data.tokenizer=byte", "model.vocab_size=384", "model.dropout=0.0",
         "model.attn_dropout=0.0"]


@pytest.mark.slow
def test_bleu_in_training_equals_scaling_eval_on_the_checkpoint(tmp_path, capsys):
    """train.eval_bleu=6 logs greedy BLEU/chrF of the first 6 validation pairs; `scaling eval
    --tasks bleu --beam 1 --alpha 0 --split validation --limit 6` scores the same pairs with
    the same parameters, restored from the checkpoint through another code path."""
    rng = random.Random(0)
    pairs = sorted({(" ".join(rng.choice(WORDS) for _ in range(4)),
                     " ".join(rng.choice(WORDS).upper() for _ in range(4))) for _ in range(1000)})
    (tmp_path / "a.tsv").write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    workdir = tmp_path / "run"
    assert main(["train", "--config", "transformer-tiny", "--workdir", str(workdir), "--quiet",
                 "--data", f"tsv:{tmp_path}/*.tsv", "--set",
                 f"data.cache_dir={tmp_path / 'cache'}", *_sets(STEPS)]) == 0
    logged = [r for r in _rows(workdir) if "eval_bleu" in r]
    assert [r["step"] for r in logged] == [2] and logged[0]["eval_chrf"] >= 0.0
    capsys.readouterr()
    assert main(["eval", "--workdir", str(workdir), "--tasks", "bleu", "--beam", "1",
                 "--alpha", "0", "--split", "validation", "--limit", "6"]) == 0
    result = [json.loads(x) for x in (workdir / "eval.jsonl").read_text().splitlines()][-1]
    assert result["n"] == 6 and result["step"] == 2
    assert (result["bleu"], result["chrf"]) == (logged[0]["eval_bleu"], logged[0]["eval_chrf"])
    assert "BLEU" in capsys.readouterr().out
