"""Few-shot prompts (GPT-3 §2.4): K demonstrations drawn with a seed from the task's train
split, each its context + the task's delimiter + its answer, joined by the task's separator,
then the query's context. K may be 0, 1, a few, or "as many as fit" (MAX_SHOTS).

A prompt too long for the model loses whole demonstrations from the left, never the query;
how often that happened is counted and reported with the results.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from scaling.eval.tasks import Example, Task

MAX_SHOTS = -1  # "as many demonstrations as fit the context"


@dataclass(frozen=True)
class Prompt:
    text: str
    shots: int  # demonstrations actually in the prompt
    truncated: bool  # demonstrations were dropped to fit (not counted for MAX_SHOTS)


def query_text(task: Task, ex: Example) -> str:
    """The example's context as the model sees it (GPT-3's fill-in-the-blank cloze format
    turns "... word" into "... ____. ->")."""
    if task.spec.kind == "cloze" and task.spec.blank:
        return ex.context.rstrip() + " ____. ->"
    return ex.context


def demo_text(task: Task, ex: Example) -> str:
    """A demonstration: its context, the delimiter, its answer (rolling: the text)."""
    if task.spec.kind == "rolling":
        return ex.context
    delim = " " if task.spec.kind == "cloze" and task.spec.blank else task.spec.target_delimiter
    return query_text(task, ex) + delim + ex.choices[ex.answer]


def build_prompt(task: Task, ex: Example, shots: int, rng: random.Random,
                 fits: Callable[[str], bool] = lambda _: True) -> Prompt:
    """The prompt for `ex`: `shots` demonstrations (MAX_SHOTS: the whole pool, as many as
    `fits` allows) drawn by `rng` from the pool without `ex`, then the query."""
    pool = [d for d in task.demos if d != ex]
    demos = rng.sample(pool, len(pool) if shots == MAX_SHOTS else min(shots, len(pool)))
    parts = [demo_text(task, d) for d in demos]
    query = query_text(task, ex)

    def join(ps):
        return task.spec.separator.join([*ps, query])

    dropped = 0
    while parts and not fits(join(parts)):
        parts, dropped = parts[1:], dropped + 1
    return Prompt(join(parts), len(parts), dropped > 0 and shots != MAX_SHOTS)
