"""The offline demo tasks (scaling/data/sources/demo_tasks.py), built from small made-up word lists
(no wordfreq needed): formats, determinism, and every label checked by a hand count."""

import json
import math

import numpy as np

from scaling.data.sources.demo_tasks import MAX_WORDS, MIN_WORDS, SPLITS, build_tasks

LISTS = {lang: ([f"{lang}{i}" for i in range(20)], np.full(20, 1 / 20))
         for lang in ("xa", "xb", "xc")}


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _language(text: str) -> str:
    (lang,) = {w[:2] for w in text.split()}  # every word of a sentence from one list
    assert MIN_WORDS <= len(text.split()) <= MAX_WORDS
    return lang


def test_demo_tasks_are_labelled_as_a_hand_count_says_and_reproducible(tmp_path):
    dirs = build_tasks(tmp_path / "a", LISTS, seed=3, train=600, evaluation=50)
    langs = list(LISTS)
    for split in SPLITS:
        langid = _rows(dirs["langid"] / f"{split}.jsonl")
        pairs = _rows(dirs["same_language"] / f"{split}.jsonl")
        assert len(langid) == len(pairs) == (600 if split == "train" else 50)
        assert all(set(r) == {"text", "label"} for r in langid)
        assert all(langs[r["label"]] == _language(r["text"]) for r in langid)
        assert all(set(r) == {"text", "text_pair", "label"} for r in pairs)
        assert all(r["label"] == int(_language(r["text"]) == _language(r["text_pair"]))
                   for r in pairs)
    train = _rows(dirs["same_language"] / "train.jsonl")
    same = sum(r["label"] for r in train)
    assert abs(same - 300) <= 4 * math.sqrt(150)  # balanced: Binomial(600, 1/2), 4 sigma
    counts = np.bincount([r["label"] for r in _rows(dirs["langid"] / "train.jsonl")])
    assert len(counts) == 3 and counts.min() > 150  # each of 3 classes ~200 of 600
    again = build_tasks(tmp_path / "b", LISTS, seed=3, train=600, evaluation=50)
    for task in dirs:
        for split in SPLITS:
            assert (dirs[task] / f"{split}.jsonl").read_bytes() == \
                (again[task] / f"{split}.jsonl").read_bytes()
    other = build_tasks(tmp_path / "c", LISTS, seed=4, train=600, evaluation=50)
    assert (other["langid"] / "train.jsonl").read_bytes() != \
        (dirs["langid"] / "train.jsonl").read_bytes()
