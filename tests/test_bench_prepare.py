"""`scaling bench prepare`'s parts that run in seconds: the generated corpus, the peak-RSS
watcher and the summary (the benchmark itself is never run in CI)."""

import json
import sys

import pytest

from scaling.bench.prepare import link_prefix, make_corpus, parse_workers
from scaling.bench.prepare_stats import run_watched, summarize
from scaling.errors import UserError


def test_corpus_is_deterministic_jsonl_of_the_asked_size(tmp_path):
    a, b = make_corpus(tmp_path / "a", 0.5), make_corpus(tmp_path / "b", 0.5)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    total = sum(p.stat().st_size for p in a)
    assert 0.5e6 <= total < 0.5e6 + 800e3  # at most one document past the target
    docs = [json.loads(line)["text"] for line in a[0].read_text().splitlines()]
    assert docs and all(docs)
    small = link_prefix(a, total / 4e6, tmp_path / "small")
    assert 0 < len(small) < len(a)
    assert small[0].read_bytes() == a[0].read_bytes()


def test_run_watched_sees_a_worker_process_peak(tmp_path):
    child = "b = bytearray(96 << 20); import time; time.sleep(1.0)"
    launcher = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    watched = run_watched([sys.executable, "-c", launcher], tmp_path / "log")
    assert watched["worker_procs"] == 1
    assert watched["worker_peak_mb"] >= 96
    assert watched["launcher_peak_mb"] < watched["worker_peak_mb"]
    with pytest.raises(UserError, match="exit 3"):
        run_watched([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "log")


def _run(corpus, workers, mb, seconds, peak):
    return {"corpus": corpus, "workers": workers, "text_bytes": mb * 1e6, "build_s": seconds,
            "mb_per_s": mb / seconds, "wall_mb_per_s": mb / (seconds + 1),
            "tokens_per_s": mb * 3e5 / seconds, "launcher_peak_mb": 200.0,
            "worker_peak_mb": None if workers == 1 else peak}


def test_summary_ratios_marginal_rates_and_extrapolation():
    runs = [_run("large", 1, 100, 52, 300), _run("large", 2, 100, 30, 280),
            _run("small", 1, 25, 14.5, 250), _run("small", 2, 25, 11.25, 250)]
    s = summarize(runs, [{"mb_per_s": 2.0, "tokens_per_s": 6e5}], [1, 2])
    assert s["marginal"][1] == {"mb_per_s": 2.0, "fixed_s": 2.0}
    assert s["marginal"][2] == {"mb_per_s": 4.0, "fixed_s": 5.0}
    ratios = {r["name"]: r for r in s["ratios"]}
    assert ratios["2 workers / 1 worker, MB/s (marginal)"]["value"] == 2.0
    assert ratios["1 worker / bare tokenizer, MB/s (marginal)"]["met"]
    assert ratios["peak work RSS large / small corpus, 2 worker(s)"]["value"] == 1.12
    assert s["c4_hours"]["marginal"][100] == round(800e3 / (100 * 2.0) / 3600, 2)


def test_parse_workers():
    assert parse_workers("2, 1,2") == [1, 2]
    with pytest.raises(UserError, match="--workers 'one': expected worker counts >= 1"):
        parse_workers("one")
