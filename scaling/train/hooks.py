"""Hooks: what the training loop runs between steps, each on its own interval.

    hooks = Hooks()
    hooks.add("log", log_fn, every=config.train.log_every)
    hooks.add("eval", eval_fn, every=config.train.eval_every, at_end=False)
    ...
    hooks.run(StepInfo(step, end, total, metrics))      # after every step, in order

A hook is a function of the `StepInfo` of the step just taken. It may ask the loop to stop
after this step (`info.stop`, e.g. preemption) or ask for a checkpoint (`info.save`); hooks
later in the order see the request. Logging, evaluation, preemption and checkpointing are
hooks (train/loop.py); later work (profiling) adds its own without touching the loop.

Evaluations beyond the validation loss (BLEU, few-shot tasks, a fine-tuning run's dev
metrics) are not the loop's: the command builds them (scaling/eval/registry.py) and passes
them to `train(..., evaluations=...)` as `Evaluation`s; the loop runs each as a hook on the
evaluation interval without knowing any of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class StepInfo:
    """The step just finished: `step` steps are done; `end` is this session's last step and
    `total` the run's (train.steps). `metrics` are the step's device values."""

    step: int
    end: int
    total: int
    metrics: dict
    stop: bool = False  # a hook asks the loop to stop after this step
    save: bool = False  # a hook asks for a checkpoint at this step


@dataclass(frozen=True)
class Hook:
    """`fn` runs when `every` divides the step, at the session's last step if `at_end`, and
    whenever `also(info)` holds."""

    name: str
    fn: Callable[[StepInfo], None]
    every: int
    at_end: bool = True
    also: Callable[[StepInfo], bool] | None = None

    def due(self, info: StepInfo) -> bool:
        return (info.step % self.every == 0 or (self.at_end and info.step == info.end)
                or (self.also is not None and self.also(info)))


class Hooks:
    """An ordered list of hooks, run after every step."""

    def __init__(self):
        self._hooks: list[Hook] = []
        self.timer: Callable[[str, float], None] | None = None  # (name, seconds) per call

    def add(self, name: str, fn: Callable[[StepInfo], None], *, every: int, at_end: bool = True,
            also: Callable[[StepInfo], bool] | None = None) -> Hook:
        """Append a hook (levanter's `add_hook(fn, every=N)`); names must be unique."""
        if every < 1:
            raise ValueError(f"hook {name!r}: every={every} must be >= 1")
        if any(h.name == name for h in self._hooks):
            raise ValueError(f"hook {name!r} is added twice")
        hook = Hook(name, fn, every, at_end, also)
        self._hooks.append(hook)
        return hook

    def names(self) -> list[str]:
        return [h.name for h in self._hooks]

    def run(self, info: StepInfo) -> None:
        for hook in self._hooks:
            if hook.due(info):
                start = time.perf_counter()
                hook.fn(info)
                if self.timer is not None:
                    self.timer(hook.name, time.perf_counter() - start)


@dataclass(frozen=True)
class Evaluation:
    """An evaluation a command hands to the training loop. `start(run)`, called once the
    `Run` is built, returns a function `(state, step) -> metrics row`, or None when this run
    has nothing for it to evaluate. The loop calls that function on train.eval_every and at
    the run's last step, writes its row to metrics.jsonl and does not count its time as
    training throughput; `name` names its hook (and its seconds in summary.json's `time`)."""

    name: str
    start: Callable[[Any], Callable[[Any, int], dict] | None]
