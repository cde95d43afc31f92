"""Multiple-choice evaluation tasks: each example is a context, choices and the right one.

Tasks come from local files (`jsonl:PATH`, one {"context", "choices", "answer"} object per line)
or are built from the run's own validation text, so evaluation needs no download:

- `next_line`: the first lines of a validation document as context; the true next line among
  three lines drawn from other documents (a HellaSwag-style continuation choice).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scaling.errors import UserError
from scaling.jsonl import jsonl_objects


@dataclass(frozen=True)
class Example:
    context: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class Task:
    """`examples` are scored; `demos` are the pool few-shot demonstrations are drawn from."""

    name: str
    examples: tuple[Example, ...]
    demos: tuple[Example, ...]


def _example(obj, where: str) -> Example:
    try:
        context, choices, answer = obj["context"], obj["choices"], obj["answer"]
    except (KeyError, TypeError):
        raise UserError(f"{where}: expected an object with context, choices and answer") from None
    if not (isinstance(context, str) and isinstance(choices, list) and len(choices) >= 2
            and all(isinstance(c, str) and c for c in choices)):
        raise UserError(f"{where}: context must be text and choices a list of 2 or more "
                        f"non-empty strings")
    if not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise UserError(f"{where}: answer must be the index of the right choice "
                        f"(0..{len(choices) - 1}), got {answer!r}")
    return Example(context, tuple(choices), answer)


def jsonl_task(path: str, n_demos: int = 16) -> Task:
    """A task file: the first `n_demos` lines serve as demonstrations when there are enough
    examples left to score, otherwise demonstrations come from the other examples."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UserError(f"task file {path} does not exist") from None
    except UnicodeDecodeError:
        raise UserError(f"task file {path} is not UTF-8 text") from None
    examples = [_example(obj, f"{path}:{n}")
                for n, obj in jsonl_objects(text, lambda n: f"{path}:{n}", UserError)]
    if len(examples) < 2:
        raise UserError(f"task file {path} needs at least 2 examples, found {len(examples)}")
    k = n_demos if len(examples) > 2 * n_demos else 0
    return Task(f"jsonl:{path}", tuple(examples[k:]), tuple(examples[:k] or examples))


def next_line_task(documents: list[str], n: int, seed: int, context_lines: int = 4) -> Task:
    """Context = `context_lines` consecutive lines of a document, answer = the line after them,
    distractors = three lines from other documents; choice order shuffled by `seed`."""
    rng = random.Random(seed)
    docs = [[ln for ln in d.splitlines() if ln.strip()] for d in documents]
    docs = [d for d in docs if len(d) > context_lines]
    if len(docs) < 4:
        raise UserError("next_line needs at least 4 validation documents with more than "
                        f"{context_lines} non-empty lines; use a larger corpus")
    examples = []
    for _ in range(2 * n):  # half scored, half demonstrations
        i = rng.randrange(len(docs))
        start = rng.randrange(len(docs[i]) - context_lines)
        context = "\n".join(docs[i][start:start + context_lines]) + "\n"
        right = docs[i][start + context_lines]
        others = [rng.choice(docs[j]) for j in rng.sample(
            [j for j in range(len(docs)) if j != i], 3)]
        choices = [right, *others]
        rng.shuffle(choices)
        examples.append(Example(context, tuple(choices), choices.index(right)))
    return Task("next_line", tuple(examples[:n]), tuple(examples[n:]))


def few_shot_prompt(task: Task, example: Example, shots: int, rng: random.Random) -> str:
    """GPT-3 §2.4: `shots` demonstrations (context + right answer) drawn from the task's
    pool, separated by blank lines, then the example's context."""
    pool = [d for d in task.demos if d != example]
    demos = rng.sample(pool, min(shots, len(pool)))
    parts = [d.context + d.choices[d.answer] for d in demos]
    return "\n\n".join([*parts, example.context]) if parts else example.context
