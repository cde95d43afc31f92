"""Few-shot evaluation of a trained run: in-training `train.eval_tasks`, `scaling eval` with
--show-prompt/--log-samples/--output, and the lm-evaluation-harness adapter agreeing with it."""

import json

import pytest
from helpers import word_corpus

from scaling.cli import main

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
TINY = ["model.n_layers=1", "model.d_model=32", "model.n_heads=4", "model.d_ff=64",
        "model.max_len=32", "model.vocab_size=384", "data.tokenizer=byte",
        "train.global_batch=8", "train.log_every=1", "train.eval_every=2",
        "train.eval_batches=1", "train.checkpoint_every=2", "optim.warmup_steps=2",
        "train.steps=2", "train.eval_tasks=kv_recall@1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fewshot")
    data = word_corpus(root, 6, 0, WORDS, lines=40)
    workdir = root / "run"
    sets = [a for item in data + TINY for a in ("--set", item)]
    assert main(["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
                 *sets]) == 0
    task = root / "mc.jsonl"
    task.write_text("".join(json.dumps({"context": f"{a} {b}", "choices": [f" {c}", f" {a}"],
                                        "answer": i % 2}) + "\n"
                            for i, (a, b, c) in enumerate(zip(WORDS, WORDS[3:] + WORDS[:3],
                                                                  WORDS[5:] + WORDS[:5],
                                                                  strict=True))))
    return workdir, task


@pytest.mark.slow
def test_in_training_eval_tasks_are_logged(run):
    workdir, _ = run
    rows = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    hits = [r for r in rows if "eval_kv_recall_1shot_exact_match" in r]
    assert len(hits) == 1 and hits[0]["step"] == 2
    assert 0.0 <= hits[0]["eval_kv_recall_1shot_f1"] <= 1.0


@pytest.fixture(scope="module")
def evaluated(run, tmp_path_factory):
    """One `scaling eval` of the run: (stdout, results JSON with per-example samples)."""
    import contextlib
    import io

    workdir, task = run
    out, printed = tmp_path_factory.mktemp("eval") / "res.json", io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["eval", "--workdir", str(workdir), "--tasks", f"jsonl:{task},2D+",
                     "--shots", "0,1", "--limit", "10", "--show-prompt", "--log-samples",
                     "--output", str(out)]) == 0
    return printed.getvalue(), json.loads(out.read_text())["results"]


def test_scaling_eval_shows_prompts_and_logs_samples(evaluated):
    printed, res = evaluated
    assert "--- 2D+, 1-shot, seed 0, example 0 ---\nQ: What is" in printed
    assert [(r["task"], r["shots"]) for r in res][2:] == [("2D+", 0), ("2D+", 1)]
    assert len(res[0]["samples"]) == 10 and len(res[0]["samples"][0]["logp"]) == 2
    # 32 positions: a demonstration + the query + 8 answer tokens do not fit, so the
    # demonstration is dropped (never the query) and every such prompt is counted
    assert res[3]["shots_used"] == 0 and res[3]["truncated"] == 10 and "exact_match" in res[3]
    assert "10 prompts cut" in printed


@pytest.mark.slow
def test_lm_eval_adapter_agrees_with_scaling_eval(run, evaluated, tmp_path, monkeypatch,
                                                  capsys):
    pytest.importorskip("lm_eval")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    workdir, task = run
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "toy_mc.yaml").write_text(f"""task: toy_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {task}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
target_delimiter: ""
metric_list:
  - metric: acc
  - metric: acc_norm
""")
    out = tmp_path / "lm_eval.json"
    assert main(["eval", "--workdir", str(workdir), "--harness", "toy_mc", "--harness-include",
                 str(tmp_path / "tasks"), "--output", str(out)]) == 0
    assert "toy_mc" in capsys.readouterr().out
    theirs = json.loads(out.read_text())
    ours = evaluated[1][0]  # the same 10 examples, 0-shot, through `scaling eval`
    assert theirs["results"]["toy_mc"]["acc,none"] == pytest.approx(ours["acc"])
    assert theirs["results"]["toy_mc"]["acc_norm,none"] == pytest.approx(ours["acc_norm"])
    docs = sorted(theirs["samples"]["toy_mc"], key=lambda d: d["doc_id"])
    assert len(docs) == len(ours["samples"]) == 10
    for doc, mine in zip(docs, ours["samples"], strict=True):
        their_logp = [float(choice[0][0]) for choice in doc["resps"]]
        assert their_logp == pytest.approx(mine["logp"], rel=1e-5)


def test_generate_prompts_file(run, tmp_path, capsys):
    workdir, _ = run
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("alpha beta\ngamma\n\nzeta eta theta iota\n")
    assert main(["generate", "--workdir", str(workdir), "--prompts", str(prompts),
                 "--max-new-tokens", "4", "--top-p", "0.9", "--stop", " ", "--batch", "2"]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["prompt"] for r in rows] == ["alpha beta", "gamma", "zeta eta theta iota"]
    assert all(" " not in r["text"] for r in rows) and "tokens/s" in err
    assert main(["generate", "--workdir", str(workdir), "--prompts", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
