"""`scaling train` end to end on a small local corpus: run-directory contract, learning,
and bad data ending in one line with exit code 2."""

import json
import os

import pytest

from scaling.cli import main

TINY_SETS = [
    "model.n_layers=2", "model.d_model=64", "model.n_heads=4", "model.d_ff=128",
    "model.max_len=32", "model.vocab_size=384", "data.tokenizer=byte", "train.global_batch=16",
    "train.steps=40", "train.log_every=5", "train.eval_every=20", "train.eval_batches=2",
    "optim.warmup_steps=5", "optim.lr=3e-3",
]


def sets(items: list[str]) -> list[str]:
    """--set flags for each key=value."""
    return [arg for item in items for arg in ("--set", item)]


TINY = sets(TINY_SETS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for i in range(40):  # repetitive text: a tiny model must beat the unigram entropy on it
        lines = [f"def f{i}_{j}(x):\n    return x * {j} + {i}\n" for j in range(30)]
        (root / f"doc{i:02d}.txt").write_text("".join(lines), encoding="utf-8")
    return root


@pytest.mark.slow
def test_train_writes_run_directory_and_learns(corpus, tmp_path, capsys):
    workdir = tmp_path / "run"
    code = main(["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
                 "--data", f"text:{corpus}/*.txt", *TINY])
    out, err = capsys.readouterr()
    assert code == 0, err
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["d_model"] == 64 and config["data"]["source"].startswith("text:")
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in train_rows] == list(range(5, 41, 5))
    assert [r["step"] for r in eval_rows] == [20, 40]
    for r in train_rows:
        assert {"tokens_per_sec", "mfu", "lr", "grad_norm"} <= set(r)
        assert r["tokens_per_sec"] > 0 and 0 < r["mfu"]
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["final_eval_loss"] < 0.8 * summary["unigram_entropy"]
    assert "final validation loss" in out and "unigram entropy" in out


@pytest.mark.parametrize("make,needle", [
    (lambda d: None, "no files match"),
    (lambda d: (d / "a.txt").write_text(""), "empty"),
    (lambda d: (d / "a.txt").write_bytes(b"caf\xe9 \xff\xfe"), "UTF-8"),
    (lambda d: [(d / f"{i}.txt").write_text("tiny") for i in range(3)], "one batch"),
])
def test_bad_data_exits_2(make, needle, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    make(data)
    code = main(["train", "--config", "gpt-tiny", "--workdir", str(tmp_path / "run"),
                 "--quiet", "--data", f"text:{data}/*.txt", *TINY])
    _, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert needle.lower() in err.lower(), err


@pytest.mark.slow
def test_summary_covers_every_session(corpus, tmp_path, capsys):
    """Stopped at step 20 and resumed: the summary's best/final eval loss come from the whole
    history in metrics.jsonl, not only from the last session."""
    workdir = tmp_path / "run"
    args = ["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
            "--data", f"text:{corpus}/*.txt", *TINY]
    assert main([*args, "--stop_at", "20"]) == 0
    assert main(args) == 0
    capsys.readouterr()
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    evals = [r["eval_loss"] for r in rows if "eval_loss" in r]
    assert len(evals) == 2  # step 20 (first session) and step 40 (second)
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["start_step"] == 20 and summary["end_step"] == 40
    assert summary["final_eval_loss"] == evals[-1]
    assert summary["best_eval_loss"] == min(evals)


@pytest.mark.slow
def test_resume_with_another_tokenizer_exits_2(corpus, tmp_path, capsys):
    """Resuming a run on a corpus whose trained SentencePiece differs (same size, other
    pieces) is refused: the stored tokenizer hash does not match."""
    other = tmp_path / "other"
    other.mkdir()
    for i in range(40):
        (other / f"o{i}.txt").write_text(f"class K{i}:\n    pass\n" * 25 + "x = [1, 2]\n" * 9)
    sp = [s for s in TINY_SETS if s != "data.tokenizer=byte"] + [
        "data.tokenizer=sentencepiece", "data.vocab_size=320"]
    workdir = str(tmp_path / "run")
    first = ["train", "--config", "gpt-tiny", "--workdir", workdir, "--quiet", *sets(sp)]
    assert main([*first, "--data", f"text:{corpus}/*.txt", "--stop_at", "5"]) == 0
    capsys.readouterr()
    assert main([*first, "--data", f"text:{other}/*.txt"]) == 2
    err = capsys.readouterr().err
    assert "another tokenizer" in err and len(err.strip().splitlines()) == 1, err


@pytest.fixture(scope="module")
def trained_run(corpus, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("trained") / "run")
    assert main(["train", "--config", "gpt-tiny", "--workdir", workdir, "--quiet",
                 "--data", f"text:{corpus}/*.txt", *TINY]) == 0
    return workdir


@pytest.mark.slow
def test_generate_continues_a_prompt_from_a_trained_run(trained_run, tmp_path, capsys):
    capsys.readouterr()
    args = ["generate", "--workdir", trained_run, "--prompt", "def f3_", "--temperature", "0"]
    assert main([*args, "--max-new-tokens", "12"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("def f3_") and len(out) > len("def f3_")
    assert main([*args, "--max-new-tokens", "100"]) == 2  # 100 + prompt > 32 positions
    assert "exceed the model's 32 positions" in capsys.readouterr().err
    assert main(["generate", "--workdir", str(tmp_path / "nope"), "--prompt", "x"]) == 2
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_eval_scores_the_trained_pattern_above_chance(trained_run, tmp_path, capsys):
    """The corpus repeats `return x * j + i` inside `def fi_j`: a trained model must prefer
    that continuation to a shuffled one far more often than chance (0.5)."""
    rows = []
    for n in range(30):
        i, j = n % 40, (7 * n) % 30
        right, wrong = f"{j} + {i}", f"{i} - {j}"
        rows.append({"context": f"def f{i}_{j}(x):\n    return x * ",
                     "choices": [right, wrong] if n % 2 else [wrong, right],
                     "answer": 0 if n % 2 else 1})
    path = tmp_path / "pattern.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    assert main(["eval", "--workdir", trained_run, "--tasks", f"jsonl:{path}",
                 "--shots", "0,2"]) == 0
    results = [json.loads(line) for line in open(os.path.join(trained_run, "eval.jsonl"))]
    assert [r["shots"] for r in results] == [0, 2]
    assert all(r["acc"] >= 0.8 and r["n"] == 30 for r in results), results
    assert main(["eval", "--workdir", trained_run, "--tasks", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
