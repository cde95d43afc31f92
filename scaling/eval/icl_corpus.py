"""A corpus of few-shot episodes and held-out tasks for showing in-context learning (issue
12's demonstration): `python -m scaling.eval.icl_corpus --out DIR [--kind label|map]`.

A *rule* is N_KEYS letters, each mapped to a digit; it is only inferable from its
demonstrations, one a line, in exactly the format `scaling eval` prompts with (context
"k ->", target delimiter " ", answer "7", separator "\\n"):

    q -> 7
    c -> 7
    q -> 3

- `label` (default): one digit for all the rule's keys, and each demonstration shows a wrong
  digit with probability `noise` (0.4): one demonstration is weak evidence, many are strong
  (the majority of K demonstrations is right more often as K grows).
- `map`: a digit per key, no noise: a query "c ->" is answerable only when "c -> ..." is
  among the K demonstrations (probability 1 - (1 - 1/N_KEYS)^K), by an induction-style lookup.

DIR/train/icl_NNN.txt: episodes (each under a fresh training rule, 2..MAX_LINES lines),
separated by blank lines, plus a minority of episodes of the built-in `copy` and `kv_recall`
tasks in their own prompt format. DIR/heldout/ruleJ.yaml (+ _test.jsonl, _train.jsonl):
multiple-choice tasks (the ten digits) for HELD-OUT rules that no training episode uses,
scored against the rule's true digit. Everything is a pure function of the seed.
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

from scaling.eval.prompts import demo_text
from scaling.eval.synthetic import copy_example, kv_recall_example, synthetic_task

N_KEYS = 6
VALUES = tuple(string.digits)
MAX_LINES = 24
POOL = 64  # demonstrations per held-out task (keys drawn uniformly; K = 16 needs >= 16)
NOISE = 0.4  # label rules: the share of demonstrations showing a wrong digit
BUILTIN_SHARE = 0.2  # episodes of the built-in copy / kv_recall tasks

Rule = tuple[tuple[str, str], ...]  # ((key, value), ...) sorted by key


def random_rule(rng: random.Random, kind: str = "label") -> Rule:
    """`map`: each key its own digit; `label`: one digit for all the rule's keys."""
    keys = sorted(rng.sample(string.ascii_lowercase, N_KEYS))
    label = rng.choice(VALUES)
    return tuple((k, rng.choice(VALUES) if kind == "map" else label) for k in keys)


def heldout_rules(n: int, seed: int, kind: str = "label") -> list[Rule]:
    """The `n` evaluation rules of `seed` (their own random stream)."""
    rng = random.Random(f"icl/heldout/{seed}")
    return [random_rule(rng, kind) for _ in range(n)]


def training_rules(n: int, seed: int, exclude: list[Rule], kind: str = "label") -> list[Rule]:
    """`n` training rules of `seed`; a rule equal to one in `exclude` is drawn again."""
    rng, banned, out = random.Random(f"icl/train/{seed}"), set(exclude), []
    while len(out) < n:
        rule = random_rule(rng, kind)
        if rule not in banned:
            out.append(rule)
    return out


def line(key: str, value: str) -> str:
    return f"{key} -> {value}"


def shown(value: str, rng: random.Random, noise: float) -> str:
    """A demonstration's answer: the rule's `value`, or with probability `noise` another
    digit (uniformly), so that one demonstration is weak evidence and many are strong."""
    return rng.choice([v for v in VALUES if v != value]) if rng.random() < noise else value


def rule_episode(rule: Rule, rng: random.Random, noise: float = 0.0) -> str:
    lines = []
    for _ in range(rng.randint(2, MAX_LINES)):
        key, value = rng.choice(rule)
        lines.append(line(key, shown(value, rng, noise)))
    return "\n".join(lines)


def builtin_episode(rng: random.Random) -> str:
    """Four demonstrations of `copy` or `kv_recall` joined as `scaling eval` joins them."""
    make = copy_example if rng.random() < 0.5 else kv_recall_example
    task = synthetic_task("copy", 1, 0)  # only its spec: separator and delimiter
    return task.spec.separator.join(demo_text(task, make(rng)) for _ in range(4))


def training_text(rules: list[Rule], rng: random.Random, noise: float) -> str:
    """One file: an episode per rule (or a built-in-task episode), blank-line separated."""
    return "\n\n".join(builtin_episode(rng) if rng.random() < BUILTIN_SHARE
                       else rule_episode(rule, rng, noise) for rule in rules) + "\n"


def heldout_files(rule: Rule, name: str, n_test: int, rng: random.Random,
                  noise: float = 0.0) -> dict[str, str]:
    """{filename: text} of one held-out task: a YAML spec, its scored examples (the rule's
    true answers) and its demonstration pool (answers noisy as in training). Pool rows list
    the choices in reverse order so that no pool row is *equal* to a scored row (the prompt
    builder leaves a scored example's equal out of its pool); the demonstration text is the
    same either way."""
    def row(key, reverse):
        value = dict(rule)[key] if not reverse else shown(dict(rule)[key], rng, noise)
        choices = list(VALUES[::-1] if reverse else VALUES)
        return json.dumps({"context": f"{key} ->", "choices": choices,
                           "answer": choices.index(value)})

    keys = [k for k, _ in rule]
    test = "".join(row(rng.choice(keys), False) + "\n" for _ in range(n_test))
    pool = "".join(row(rng.choice(keys), True) + "\n" for _ in range(POOL))
    spec = (f"name: icl_{name}\nkind: multiple_choice\nseparator: \"\\n\"\n"
            f"target_delimiter: \" \"\ntest: {name}_test.jsonl\ntrain: {name}_train.jsonl\n")
    return {f"{name}.yaml": spec, f"{name}_test.jsonl": test, f"{name}_train.jsonl": pool}


def write_corpus(out: str, episodes: int = 20000, files: int = 40, heldout: int = 3,
                 n_test: int = 300, seed: int = 0, kind: str = "label",
                 noise: float = NOISE) -> list[Path]:
    """Writes DIR/train/*.txt and DIR/heldout/*; returns the held-out YAML paths."""
    root = Path(out)
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "heldout").mkdir(parents=True, exist_ok=True)
    noise = noise if kind == "label" else 0.0
    held = heldout_rules(heldout, seed, kind)
    rules = training_rules(episodes, seed, held, kind)
    rng = random.Random(f"icl/text/{seed}")
    per = -(-episodes // files)
    for i in range(files):
        chunk = rules[i * per:(i + 1) * per]
        if chunk:
            (root / "train" / f"icl_{i:03d}.txt").write_text(training_text(chunk, rng, noise))
    yamls = []
    for j, rule in enumerate(held):
        for fname, text in heldout_files(rule, f"rule{j}", n_test, rng, noise).items():
            (root / "heldout" / fname).write_text(text)
        yamls.append(root / "heldout" / f"rule{j}.yaml")
    return yamls


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="directory to write train/ and heldout/ into")
    p.add_argument("--episodes", type=int, default=20000)
    p.add_argument("--files", type=int, default=40, help="training documents (files)")
    p.add_argument("--heldout", type=int, default=3, help="held-out rules (one task each)")
    p.add_argument("--test", type=int, default=300, help="scored examples per held-out task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kind", choices=("label", "map"), default="label",
                   help="label: one digit per rule, noisy demonstrations; map: a digit per key")
    p.add_argument("--noise", type=float, default=NOISE,
                   help="label: the share of demonstrations showing a wrong digit")
    a = p.parse_args(argv)
    for path in write_corpus(a.out, a.episodes, a.files, a.heldout, a.test, a.seed, a.kind,
                             a.noise):
        print(f"yaml:{path}")


if __name__ == "__main__":
    main()
