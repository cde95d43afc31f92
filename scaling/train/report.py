"""What the training loop says and writes: status lines, JSON files, metric values."""

from __future__ import annotations

import json
import math
import sys

import jax
from tqdm import tqdm

from scaling import storage
from scaling.accounting import bubble_fraction
from scaling.errors import UserError


def say(message: str) -> None:
    """One status line on stderr, from process 0 only (kept clear of the progress bar)."""
    if jax.process_index() == 0:
        tqdm.write(f"scaling: {message}", file=sys.stderr)


def finite_or_none(v):
    """JSON has no NaN: a non-finite metric is written as null."""
    v = float(v)
    return v if math.isfinite(v) else None


def write_json(path: str, obj) -> None:
    """Write `obj` to `path` (a local path or a URI) atomically: a temporary file and a
    rename, or one object upload."""
    try:
        storage.write_atomic(path, json.dumps(obj, indent=2, sort_keys=True))
    except OSError as e:
        raise UserError(f"cannot write {path}: {storage.error_text(e)}") from None


def pipeline_report(config) -> str:
    """The start-up line of a pipelined run: stages, microbatches, the bubble, and what to
    change when it is large."""
    S, M = config.mesh.stage, config.train.microbatches
    bubble = bubble_fraction(S, M)
    line = (f"pipeline: {S} stages of {config.model.n_layers // S} layers, {M} microbatches "
            f"(GPipe): bubble {bubble:.0%} of each step, counted in MFU (at most "
            f"{1 - bubble:.0%})")
    if M < S:
        line += (f"; fewer microbatches than stages, so most of each stage's time is idle: "
                 f"set train.microbatches >= {4 * S} for a bubble under 20%")
    return line
