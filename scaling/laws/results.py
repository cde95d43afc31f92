"""Reading a results table (a sweep's or any external CSV/JSONL) into arrays of N, D, C, loss.

Column names come from the caller. Training tokens D and compute C are related by
C = 6 N D (Kaplan et al. 2020 §2.1): a table with only one of them gets the other derived.
Every problem is a UserError naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass

import numpy as np

from scaling.errors import UserError
from scaling.jsonl import jsonl_objects


class ResultsError(UserError, ValueError):
    """A results file that cannot be read as a table of positive numbers."""


@dataclass(frozen=True)
class Results:
    """One row per training run: parameters N, tokens D, compute C = 6ND, final loss."""

    n: np.ndarray
    d: np.ndarray
    c: np.ndarray
    loss: np.ndarray
    budget: np.ndarray | None = None  # nominal IsoFLOP budget of each run, when the table has it
    source: str = ""

    def __len__(self) -> int:
        return len(self.loss)

    def take(self, idx: np.ndarray) -> Results:
        """The rows at `idx` (for bootstrap resamples)."""
        budget = None if self.budget is None else self.budget[idx]
        return Results(self.n[idx], self.d[idx], self.c[idx], self.loss[idx], budget, self.source)


def _read_text(path: str) -> str:
    """The file as UTF-8 text; a binary or unreadable file is a ResultsError."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ResultsError(f"{path}: not a UTF-8 text table ({e.reason} at byte {e.start}); "
                           f"give a CSV, TSV or JSONL file") from None
    except OSError as e:
        raise ResultsError(f"{path}: cannot read ({e.strerror})") from None


def read_rows(path: str) -> list[tuple[int, dict]]:
    """(line number, row dict) for every data row of a CSV, TSV or JSONL file."""
    if not os.path.isfile(path):
        raise ResultsError(f"results file {path!r} does not exist")
    text = _read_text(path)
    if not text.strip():
        raise ResultsError(f"{path}: the file is empty; expected a CSV header or JSONL rows")
    if path.endswith((".jsonl", ".json")) or text.lstrip().startswith("{"):
        return _jsonl_rows(path, text)
    delimiter = "\t" if path.endswith(".tsv") else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    rows = [(reader.line_num, row) for row in reader]
    if not rows:
        raise ResultsError(f"{path}: a header line but no data rows")
    return rows


def _jsonl_rows(path: str, text: str) -> list[tuple[int, dict]]:
    return list(jsonl_objects(text, lambda n: f"{path} line {n}", ResultsError))


def _column(path: str, rows: list[tuple[int, dict]], name: str, flag: str) -> np.ndarray:
    known = list(rows[0][1])
    if name not in known:
        raise ResultsError(
            f"{path}: no column {name!r} (columns: {', '.join(map(str, known))}); "
            f"name the right one with {flag}"
        )
    values = np.empty(len(rows))
    for i, (line, row) in enumerate(rows):
        raw = row.get(name)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ResultsError(
                f"{path} line {line}: column {name!r} value {raw!r} is not a number"
            ) from None
        if not (math.isfinite(value) and value > 0):
            raise ResultsError(
                f"{path} line {line}: column {name!r} value {raw!r} must be positive and finite"
            )
        values[i] = value
    return values


def load_results(
    path: str,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str = "C",
    loss_col: str = "loss",
    budget_col: str | None = None,
) -> Results:
    """Read N, D (or C) and loss columns of `path`; derive D = C/(6N) or C = 6ND if missing."""
    rows = read_rows(path)
    present = set(rows[0][1])
    n = _column(path, rows, n_col, "--n-col")
    loss = _column(path, rows, loss_col, "--loss-col")
    if d_col not in present and c_col not in present:
        raise ResultsError(
            f"{path}: neither a tokens column {d_col!r} nor a compute column {c_col!r} "
            f"(columns: {', '.join(map(str, rows[0][1]))}); name one with --d-col or --c-col"
        )
    d = _column(path, rows, d_col, "--d-col") if d_col in present else None
    c = _column(path, rows, c_col, "--c-col") if c_col in present else None
    if d is None:
        d = c / (6.0 * n)
    if c is None:
        c = 6.0 * n * d
    budget = _column(path, rows, budget_col, "--budget-col") if budget_col else None
    return Results(n=n, d=d, c=c, loss=loss, budget=budget, source=path)


def drop_highest_loss(results: Results, k: int) -> Results:
    """`results` without its `k` highest-loss runs (Besiroglu et al. 2024 drop 5 outliers
    from the Chinchilla extraction before fitting)."""
    if k < 0 or k >= len(results):
        raise ResultsError(f"--drop-highest-loss {k}: expected 0 <= k < {len(results)} runs")
    keep = np.sort(np.argsort(results.loss, kind="stable")[: len(results) - k])
    return results.take(keep)


def load_metrics(path: str) -> list[dict]:
    """The JSON objects of a run's metrics.jsonl (one per logged step)."""
    if not os.path.isfile(path):
        raise ResultsError(f"metrics file {path!r} does not exist")
    return [row for _, row in _jsonl_rows(path, _read_text(path))]


def find_runs(root: str) -> dict[str, str]:
    """Run name -> metrics.jsonl path for every run directory under `root`."""
    if not os.path.isdir(root):
        raise ResultsError(f"--runs {root!r} is not a directory")
    runs = {}
    for dirpath, _, files in sorted(os.walk(root)):
        if "metrics.jsonl" in files:
            name = os.path.relpath(dirpath, root)
            runs[name] = os.path.join(dirpath, "metrics.jsonl")
    return runs


def run_scales(path: str) -> tuple[dict[str, float], dict[str, float]]:
    """From a sweep's table: each run's FLOPs per step (6 N D / steps) and IsoFLOP budget,
    keyed by run name; empty where the table lacks the columns."""
    flops, groups = {}, {}
    for _, row in read_rows(path):
        try:
            name = str(row["name"])
            flops[name] = 6 * float(row["N"]) * float(row["D"]) / float(row["steps"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            continue
        try:
            groups[name] = float(row["budget"])
        except (KeyError, TypeError, ValueError):
            pass
    return flops, groups
