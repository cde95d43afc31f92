"""The in-context-learning corpus generator (scaling/eval/icl_corpus.py): deterministic for a
seed, held-out rules disjoint from the training rules, held-out tasks prompted in exactly the
corpus's line format."""

import random
import re

from scaling.eval import icl_corpus
from scaling.eval.prompts import build_prompt
from scaling.eval.tasks import yaml_task

LINE = re.compile(r"^([a-z]) -> ([0-9])$")


def _write(tmp_path, name, seed=0, kind="map"):
    out = tmp_path / name
    yamls = icl_corpus.write_corpus(str(out), episodes=300, files=3, heldout=2, n_test=20,
                                    seed=seed, kind=kind)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    return out, yamls, {p.relative_to(out): p.read_bytes() for p in files}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    _, _, a = _write(tmp_path, "a")
    _, _, b = _write(tmp_path, "b")
    _, _, c = _write(tmp_path, "c", seed=1)
    assert a == b and len(a) == 3 + 2 * 3
    assert a != c


def test_heldout_rules_not_in_training():
    for kind in ("map", "label"):
        held = icl_corpus.heldout_rules(3, seed=0, kind=kind)
        train = icl_corpus.training_rules(5000, seed=0, exclude=held, kind=kind)
        assert not set(held) & set(train)
    # the exclusion is what guarantees it: a training stream that starts with a held-out
    # rule (same rng stream) has it removed
    rng = random.Random("icl/train/0")
    first = icl_corpus.random_rule(rng)
    assert first not in icl_corpus.training_rules(3, seed=0, exclude=[first])


def test_episodes_follow_one_rule_per_episode(tmp_path):
    out, _, _ = _write(tmp_path, "a")
    text = (out / "train" / "icl_000.txt").read_text()
    rule_episodes = [e for e in text.split("\n\n") if LINE.match(e.splitlines()[0])]
    assert len(rule_episodes) > 50
    for episode in rule_episodes:
        pairs = [LINE.match(ln).groups() for ln in episode.splitlines()]
        assert len(dict(pairs)) == len(set(pairs))  # a key always maps to one value


def test_heldout_task_prompt_is_the_corpus_format(tmp_path):
    _, yamls, _ = _write(tmp_path, "a")
    task = yaml_task(str(yamls[0]))
    rule = dict(icl_corpus.heldout_rules(2, seed=0, kind="map")[0])
    assert len(task.examples) == 20 and len(task.demos) == icl_corpus.POOL
    ex = task.examples[0]
    prompt = build_prompt(task, ex, 16, random.Random(0))
    lines = prompt.text.split("\n")
    assert prompt.shots == 16 and len(lines) == 17 and lines[-1] == ex.context
    for ln in lines[:-1]:
        key, value = LINE.match(ln).groups()
        assert rule[key] == value
    assert ex.choices[ex.answer] == rule[ex.context[0]]
    assert any(ln.startswith(ex.context[0] + " ") for ln in lines[:-1])  # the pool may hold it


def test_label_rules_one_digit_noisy_demonstrations(tmp_path):
    _, yamls, _ = _write(tmp_path, "a", kind="label")
    rule = icl_corpus.heldout_rules(2, seed=0, kind="label")[0]
    (label,) = {v for _, v in rule}
    task = yaml_task(str(yamls[0]))
    assert {ex.choices[ex.answer] for ex in task.examples} == {label}  # scored: the truth
    shown = [d.choices[d.answer] for d in task.demos]
    share = shown.count(label) / len(shown)  # 1 - noise, with binomial spread
    assert abs(share - (1 - icl_corpus.NOISE)) < 4 * (0.24 / len(shown)) ** 0.5
    rng = random.Random(0)
    noisy = [icl_corpus.shown("3", rng, 0.4) for _ in range(4000)]
    assert abs(noisy.count("3") / 4000 - 0.6) < 0.03 and len(set(noisy)) == 10
