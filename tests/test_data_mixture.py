"""Data mixtures (`--data mix:...`): parsing, proportions, process-count independence, exact
resume, and a short training run that logs per-source shares and evaluation losses.

The two corpora are written with disjoint alphabets (a/b words vs x/y words), so the source of
every row is read off its tokens: the oracle for the proportions is a hand count."""

import json
import random
import re

import numpy as np
import pytest
from test_profiling import check_restart_cost

from scaling.cli import main
from scaling.config import Config, DataConfig, ModelConfig, TrainConfig
from scaling.data import ByteTokenizer, load_lm_data, load_mlm_data
from scaling.data.mixture import Allocation
from scaling.data.spec import parse_spec
from scaling.errors import DataError

B, T = 8, 32


def _write(root, words, n_docs=12, lines=40):
    rng = random.Random(len(words))
    root.mkdir()
    for i in range(n_docs):
        text = "\n".join(" ".join(rng.choice(words) for _ in range(8)) for _ in range(lines))
        (root / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
    return f"text:{root}/doc*.txt"


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    a = _write(root / "a", ["ab", "ba", "aab", "bba"])
    x = _write(root / "x", ["xy", "yx", "xxy", "yyx"])
    return a, x, root


def _config(sources, mix: str) -> Config:
    return Config(model=ModelConfig(vocab_size=384, max_len=T),
                  data=DataConfig(source=mix, tokenizer="byte",
                                  cache_dir=str(sources[2] / "cache")),
                  train=TrainConfig(global_batch=B, seq_len=T, eval_batches=2))


@pytest.fixture(scope="module")
def mix_source(sources):
    return f"mix:0.7*{sources[0]},0.3*{sources[1]}"


@pytest.fixture(scope="module")
def data(sources, mix_source):
    return load_lm_data(_config(sources, mix_source), process_index=0, process_count=1)


def _from_a(rows: np.ndarray) -> np.ndarray:
    """[n] True where a row holds a/b bytes and no x/y bytes (read off the tokens)."""
    tok = ByteTokenizer()
    a_ids = [tok.encode("a")[0], tok.encode("b")[0]]
    x_ids = [tok.encode("x")[0], tok.encode("y")[0]]
    has_a, has_x = np.isin(rows, a_ids).any(1), np.isin(rows, x_ids).any(1)
    assert not (has_a & has_x).any() and (has_a | has_x).all()
    return has_a


def test_parse_normalizes_weights_and_reads_globs():
    spec = parse_spec("mix:3*embedded,text:d/*.txt")
    assert spec.kind == "mix" and spec.names == ("embedded", "text")
    assert [w for w, _ in spec.parts] == [0.75, 0.25]
    assert str(spec.parts[1][1]) == "text:d/*.txt"  # the glob's `*` is not a weight
    assert parse_spec("mix:text:a,text:b").names == ("text1", "text2")


@pytest.mark.parametrize("bad,needle", [
    ("mix:", "bad mixture item '' (weight 1.0)"),
    ("mix:0*embedded", "bad mixture item 'embedded' (weight 0.0)"),
    ("mix:-1*embedded", "bad mixture item 'embedded' (weight -1.0)"),
    ("mix:1*foo:x", "mixture item '1*foo:x' is not a data source"),
    ("mix:nan*embedded", "bad mixture item 'embedded' (weight nan)"),
    ("mix:mix:embedded", "a mixture cannot contain a mixture"),
    ("mix:0.5*", "bad mixture item '' (weight 0.5)"),
])
def test_bad_mixtures_exit_2_with_one_line(bad, needle, tmp_path, capsys):
    with pytest.raises(DataError, match=re.escape(f"--data {bad!r}: {needle}")):
        parse_spec(bad)
    # a run directory that could be created: the --data check is the one that fires
    assert main(["train", "--config", "gpt-tiny", "--workdir", str(tmp_path / "run"),
                 "--data", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"--data {bad!r}: {needle}" in err, err


def test_allocation_is_unbiased_and_within_one_row():
    weights = (0.55, 0.3, 0.15)  # B w = 4.4, 2.4, 1.2: every source has a fraction
    alloc = Allocation(weights, B, seed=7)
    counts = alloc.counts(np.arange(20000))  # [S, K]
    assert (counts.sum(1) == B).all()
    exact = B * np.array(weights)
    assert (np.abs(counts - exact) < 1).all()
    std = np.sqrt((exact % 1) * (1 - exact % 1) / len(counts))  # Bernoulli(frac) mean
    assert (np.abs(counts.mean(0) - exact) < 4 * std).all()


def test_batches_have_the_configured_proportions(data):
    counts = [_from_a(data.batch(s)["inputs"]).sum() for s in range(300)]
    assert set(counts) <= {5, 6}  # B * 0.7 = 5.6: every batch within one row
    assert abs(np.mean(counts) - 5.6) < 4 * np.sqrt(0.24 / 300)
    assert data.batch(3)["inputs"].shape == (B, T)


@pytest.mark.parametrize("loader", [load_lm_data, load_mlm_data])
def test_global_batch_does_not_depend_on_process_count(sources, mix_source, loader):
    config = _config(sources, mix_source)
    one = loader(config, process_index=0, process_count=1)
    two = [loader(config, process_index=p, process_count=2) for p in (0, 1)]
    for step in (0, 5, 123):
        whole = one.batch(step)
        for key, value in whole.items():
            np.testing.assert_array_equal(
                value, np.concatenate([d.batch(step)[key] for d in two]), err_msg=key)


def test_iterator_resumes_exactly(data):
    it = data.iterator(0)
    [next(it) for _ in range(3)]
    state = it.get_state()
    expected = [next(it)["inputs"] for _ in range(2)]
    again = data.iterator(0)
    again.set_state(json.loads(json.dumps(state)))
    for batch in expected:
        np.testing.assert_array_equal(next(again)["inputs"], batch)
    np.testing.assert_array_equal(data.iterator(3).__next__()["inputs"], expected[0])


def test_log_row_counts_rows_by_hand(data):
    rows = {name: 0 for name in data.names}
    for s in range(10):
        a = int(_from_a(data.batch(s)["inputs"]).sum())
        rows["text1"] += a
        rows["text2"] += B - a
    row = data.log_row(5, 10)
    assert row["tokens_seen/text1"] == rows["text1"] * T
    assert row["tokens_seen/text2"] == rows["text2"] * T
    a_late = sum(int(_from_a(data.batch(s)["inputs"]).sum()) for s in range(5, 10))
    assert row["share/text1"] == pytest.approx(a_late / (5 * B))


@pytest.mark.slow
def test_train_logs_shares_and_per_source_eval_losses(sources, mix_source, tmp_path):
    """One short run, stopped at step 2 and resumed, serves the mixture's and the restart
    cost's checks (one compilation, to keep the suite short): per-source shares, tokens seen
    (recomputed from the step alone after the resume) and evaluation losses; a --profile
    trace; time to first step and goodput of each session."""
    workdir = tmp_path / "run"
    sets = ["model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.d_ff=64",
            f"model.max_len={T}", "model.vocab_size=384", "data.tokenizer=byte",
            f"data.cache_dir={sources[2] / 'cache'}", f"train.global_batch={B}",
            "train.steps=4", "train.log_every=2", "train.eval_every=2", "train.eval_batches=1",
            "train.checkpoint_every=2"]
    args = ["train", "--config", "gpt-tiny", "--workdir", str(workdir), "--quiet",
            "--data", mix_source, *[a for s in sets for a in ("--set", s)]]
    assert main([*args, "--stop_at", "2", "--profile", "0:1"]) == 0
    fresh = json.loads((workdir / "summary.json").read_text())
    assert main(args) == 0  # resumes at step 2
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    logs = [r for r in rows if "loss" in r]
    assert [r["step"] for r in logs] == [2, 4]
    for r in logs:
        assert r["share/text1"] + r["share/text2"] == pytest.approx(1.0)
        assert r["tokens_seen/text1"] + r["tokens_seen/text2"] == r["step"] * B * T
    evals = [r for r in rows if "eval_loss" in r]
    assert [r["step"] for r in evals] == [2, 4]
    for ev in evals:
        assert ev["eval_loss"] == pytest.approx(0.7 * ev["eval_loss/text1"]
                                                + 0.3 * ev["eval_loss/text2"])
        assert ev["eval_loss/text1"] != ev["eval_loss/text2"]
    check_restart_cost(workdir, fresh)


def test_a_mixture_of_prepared_stores_reads_each_row_from_its_own_store(sources, mix_source,
                                                                          data, tmp_path):
    a, x, _ = sources
    stores = []
    for i, spec in enumerate((a, x)):
        out = tmp_path / f"store{i}"
        assert main(["prepare", "--config", "gpt-tiny", "--data", spec, "--out", str(out),
                     "--set", "data.tokenizer=byte", "--quiet"]) == 0
        stores.append(f"store:{out}")
    mixed = load_lm_data(_config(sources, f"mix:0.7*{stores[0]},0.3*{stores[1]}"),
                         process_index=0, process_count=1)
    # the same allocation (the mixture's seed), each row read from its own store: its source
    # is read off its tokens (a/b vs x/y), and it is a window of that source's text stream
    for step in (0, 7, 31):
        want, got = data.batch(step), mixed.batch(step)
        np.testing.assert_array_equal(_from_a(got["inputs"]), _from_a(want["inputs"]))
        for i, row in enumerate(got["inputs"]):
            store = mixed.sources[mixed.names[0 if _from_a(row[None])[0] else 1]]
            stream = store._train.read(0, store._train.num_tokens)
            windows = np.lib.stride_tricks.sliding_window_view(stream, T)
            assert (windows == row).all(axis=1).any(), (step, i)


def test_a_store_with_another_tokenizer_is_refused_in_a_mixture(sources, tmp_path):
    a, x, _ = sources
    out = tmp_path / "spm"
    assert main(["prepare", "--config", "gpt-tiny", "--data", x, "--out", str(out),
                 "--set", "data.vocab_size=320", "--set", "model.vocab_size=384",
                 "--quiet"]) == 0
    with pytest.raises(DataError, match=r"source store .* has another tokenizer"):
        load_lm_data(_config(sources, f"mix:0.5*{a},0.5*store:{out}"), process_index=0,
                     process_count=1)
