"""Scores of evaluation answers: SQuAD's exact match and token F1 (Rajpurkar et al. 2016,
its official evaluation script's normalization), standard errors, bits per byte."""

from __future__ import annotations

import math
import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers) -> float:
    """1.0 when the normalized prediction equals any normalized answer."""
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(a) for a in answers))


def token_f1(prediction: str, answers) -> float:
    """The best F1 over answers of the bag of normalized tokens."""
    def f1(a: str) -> float:
        pred, gold = normalize_answer(prediction).split(), normalize_answer(a).split()
        if not pred or not gold:
            return float(pred == gold)
        common = sum((Counter(pred) & Counter(gold)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(pred), common / len(gold)
        return 2 * precision * recall / (precision + recall)

    return max(f1(a) for a in answers)


def stderr(values) -> float:
    """Standard error of the mean of per-example scores (sample standard deviation)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def bits_per_byte(logp_nats: float, n_bytes: int) -> float:
    """−Σ log p in bits over the UTF-8 bytes of the text (GPT-2 §3's tokenizer-free unit)."""
    return -logp_nats / (math.log(2) * max(n_bytes, 1))
