"""Compute and token bookkeeping for scaling laws (C = 6ND, tokens, steps, epochs), and the
model accounting the laws use, re-exported from where it lives:

- `param_counts(model)`, `flops_per_token(model, seq_len)`, `kaplan_flops_per_token(...)`:
  scaling/families/ (the family supplies its layout) over scaling/accounting.py (the pure
  arithmetic and its conventions);
- `mean_keys_per_query`: scaling/accounting.py.
"""

from __future__ import annotations

import math

from scaling.accounting import check_positive as _check_positive
from scaling.accounting import mean_keys_per_query
from scaling.families import flops_per_token, kaplan_flops_per_token, param_counts

__all__ = [
    "epochs", "flops_per_token", "kaplan_flops_per_token", "mean_keys_per_query",
    "param_counts", "steps_for_tokens", "tokens_for_compute", "tokens_for_steps",
    "tokens_per_step", "training_flops",
]

# ---------------------------------------------------------------------------------------------
# Compute and token bookkeeping.


def training_flops(n_params: float, n_tokens: float) -> float:
    """C = 6 N D, training compute of an N-parameter model on D tokens (Kaplan §2.1;
    Chinchilla §3 uses the same approximation)."""
    _check_positive(n_params=n_params, n_tokens=n_tokens)
    return 6.0 * n_params * n_tokens


def tokens_for_compute(compute: float, n_params: float) -> float:
    """D = C / (6 N): the tokens an N-parameter model sees with C training FLOPs."""
    _check_positive(compute=compute, n_params=n_params)
    return compute / (6.0 * n_params)


def tokens_per_step(global_batch: int, seq_len: int) -> int:
    """Tokens per optimizer step: sequences per step x their length."""
    _check_positive(global_batch=global_batch, seq_len=seq_len)
    return int(global_batch) * int(seq_len)


def steps_for_tokens(n_tokens: float, global_batch: int, seq_len: int) -> int:
    """Optimizer steps needed to see at least `n_tokens` tokens (rounded up)."""
    _check_positive(n_tokens=n_tokens)
    return math.ceil(n_tokens / tokens_per_step(global_batch, seq_len))


def tokens_for_steps(steps: int, global_batch: int, seq_len: int) -> int:
    """Tokens seen in `steps` optimizer steps."""
    _check_positive(steps=steps)
    return int(steps) * tokens_per_step(global_batch, seq_len)


def epochs(n_tokens: float, dataset_tokens: float) -> float:
    """Passes over a dataset of `dataset_tokens` tokens made by training on `n_tokens`."""
    _check_positive(n_tokens=n_tokens, dataset_tokens=dataset_tokens)
    return n_tokens / dataset_tokens
