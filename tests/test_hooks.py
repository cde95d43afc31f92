"""Training-loop hooks: intervals, the session's last step, extra conditions, order, and a
hook's stop/save requests seen by the hooks after it."""

import pytest

from scaling.train.hooks import Hooks, StepInfo


def run(hooks, start, end, total):
    """The training loop's use of hooks, without the training."""
    for step in range(start + 1, end + 1):
        info = StepInfo(step, end, total, {})
        hooks.run(info)
        if info.stop:
            break


def test_intervals_end_and_extra_conditions():
    calls = []
    hooks = Hooks()
    hooks.add("log", lambda i: calls.append(("log", i.step)), every=3)
    hooks.add("eval", lambda i: calls.append(("eval", i.step)), every=4, at_end=False,
              also=lambda i: i.step == i.total)
    run(hooks, 0, 7, 7)
    assert calls == [("log", 3), ("eval", 4), ("log", 6), ("log", 7), ("eval", 7)]
    calls.clear()
    run(hooks, 0, 5, 7)  # a session that stops early: eval only at multiples of 4
    assert calls == [("log", 3), ("eval", 4), ("log", 5)]


def test_a_stop_request_reaches_later_hooks_and_asks_for_a_save():
    saved = []
    hooks = Hooks()

    def preempt(info):
        if info.step == 12:
            info.stop = info.save = True

    hooks.add("preemption", preempt, every=1, at_end=False)
    hooks.add("checkpoint", lambda i: saved.append(i.step), every=10, also=lambda i: i.save)
    run(hooks, 0, 30, 30)
    assert saved == [10, 12]  # the periodic save, then the requested one; the loop stopped
    assert hooks.names() == ["preemption", "checkpoint"]


def test_bad_hooks_are_refused():
    hooks = Hooks()
    hooks.add("a", print, every=1)
    with pytest.raises(ValueError, match="twice"):
        hooks.add("a", print, every=1)
    with pytest.raises(ValueError, match="every=0"):
        hooks.add("b", print, every=0)
