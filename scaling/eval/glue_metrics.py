"""Task metrics in NumPy (GLUE's: accuracy, F1, Matthews correlation, Pearson, Spearman).

Which are reported depends on the task type; `DEFAULT_METRIC` picks the checkpoint.
"""

from __future__ import annotations

import numpy as np

DEFAULT_METRIC = {"classification": "accuracy", "multiple_choice": "accuracy",
                  "regression": "pearson"}


def accuracy(pred, gold) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(gold)))


def f1_binary(pred, gold) -> float:
    """F1 of class 1: 2·TP / (2·TP + FP + FN); 0 when there is no positive at all."""
    pred, gold = np.asarray(pred) == 1, np.asarray(gold) == 1
    tp = np.sum(pred & gold)
    denom = 2 * tp + np.sum(pred & ~gold) + np.sum(~pred & gold)
    return float(2 * tp / denom) if denom else 0.0


def matthews(pred, gold) -> float:
    """Matthews correlation (Gorodkin's multiclass form, binary as a special case) from the
    confusion matrix; 0 when either marginal is constant."""
    pred, gold = np.asarray(pred, np.int64), np.asarray(gold, np.int64)
    k = int(max(pred.max(initial=0), gold.max(initial=0))) + 1
    cm = np.zeros((k, k), np.float64)
    np.add.at(cm, (gold, pred), 1.0)
    t, p = cm.sum(1), cm.sum(0)  # true and predicted counts per class
    c, s = np.trace(cm), cm.sum()
    denom = np.sqrt(s * s - p @ p) * np.sqrt(s * s - t @ t)
    return float((c * s - t @ p) / denom) if denom else 0.0


def pearson(x, y) -> float:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    denom = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denom) if denom else 0.0


def ranks(x) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x), np.float64)
    r[order] = np.arange(1, len(x) + 1)
    values, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=r)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def spearman(x, y) -> float:
    return pearson(ranks(x), ranks(y))


def task_metrics(task_type: str, num_labels: int, pred, gold) -> dict[str, float]:
    """The metrics of a task type: classes (pred, gold int) or scores (float)."""
    if task_type == "regression":
        return {"pearson": pearson(pred, gold), "spearman": spearman(pred, gold),
                "mse": float(np.mean((np.asarray(pred) - np.asarray(gold)) ** 2))}
    out = {"accuracy": accuracy(pred, gold), "mcc": matthews(pred, gold)}
    if num_labels == 2 and task_type == "classification":
        out["f1"] = f1_binary(pred, gold)
    return out
