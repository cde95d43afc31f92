"""`scaling eval --workdir FT_RUN --tasks finetune [--split test] [--predictions FILE]`:
re-score a fine-tuning run's dev (or test) split (scaling/finetune/evaluate.py)."""

from __future__ import annotations


def finetune_eval(workdir: str, split: str, predictions: str | None) -> dict:
    from scaling.finetune.evaluate import eval_command

    return eval_command(workdir, split, predictions)
