"""Zero- and few-shot multiple-choice evaluation by log-likelihood (GPT-3 §2.4), `scaling eval`.

Each choice is scored as Σ log p(choice tokens | prompt); the prediction is the choice with the
highest sum (`acc`) or the highest per-token mean (`acc_norm`, which does not favour short
choices). Letter legend: B batch, T length.
"""

from __future__ import annotations

import functools
import math
import os
import random

import jax
import jax.numpy as jnp
import numpy as np

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.eval.tasks import Task, few_shot_prompt, jsonl_task, next_line_task
from scaling.families import family_of
from scaling.jsonl import append_rows


def pack_choice(prompt: list[int], choice: list[int], T: int):
    """inputs, targets, weights [T] scoring `choice` after `prompt`; the prompt is cut from
    the left when both do not fit in T + 1 tokens (the choice always fits whole)."""
    if len(choice) > T:
        raise UserError(f"a choice of {len(choice)} tokens does not fit the model's {T} "
                        f"positions")
    seq = (prompt + choice)[-(T + 1):]
    n = len(seq) - 1
    inputs, targets, weights = np.zeros(T, np.int32), np.zeros(T, np.int32), np.zeros(T, np.float32)
    inputs[:n], targets[:n] = seq[:-1], seq[1:]
    weights[n - len(choice):n] = 1.0  # only the choice's tokens are scored
    return inputs, targets, weights


@functools.partial(jax.jit, static_argnames=("model",))
def _choice_logprobs(model: ModelConfig, params, inputs, targets, weights):
    T = inputs.shape[1]
    batch = {"inputs": inputs, "targets": targets,
             "positions": jnp.broadcast_to(jnp.arange(T), inputs.shape),
             "segment_ids": jnp.ones_like(inputs)}
    family = family_of(model)
    logits = family.make_model(model, "eval").apply({"params": params},
                                                     *family.model_args(batch))  # [B, T, V]
    logp = jax.nn.log_softmax(logits, axis=-1)
    logp = jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]  # [B, T]
    return jnp.sum(logp * weights, axis=-1)  # [B]


def score(model: ModelConfig, params, rows: list[tuple], batch: int = 32) -> np.ndarray:
    """Σ log p over each row's weighted positions, for rows of (inputs, targets, weights)."""
    out = []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        pad = batch - len(chunk)  # fixed batch shape: one compilation
        arrays = [np.stack([r[j] for r in chunk] + [chunk[0][j]] * pad) for j in range(3)]
        out.append(np.asarray(_choice_logprobs(model, params, *arrays))[:len(chunk)])
    return np.concatenate(out)


def evaluate_task(model: ModelConfig, params, tokenizer, task: Task, shots: int,
                  seed: int = 0) -> dict:
    """Accuracy (sum and per-token-mean log-likelihood) with its standard error."""
    rng = random.Random(seed)
    rows, spans, lengths = [], [], []
    for ex in task.examples:
        prompt = [tokenizer.bos_id, *tokenizer.encode(few_shot_prompt(task, ex, shots, rng))]
        start = len(rows)
        for choice in ex.choices:
            ids = tokenizer.encode(choice)
            rows.append(pack_choice(prompt, ids, model.max_len))
            lengths.append(len(ids))
        spans.append((start, len(rows)))
    logp = score(model, params, rows)
    norm = logp / np.maximum(np.asarray(lengths), 1)
    hits = np.array([[np.argmax(v[a:b]) == ex.answer for v in (logp, norm)]
                     for (a, b), ex in zip(spans, task.examples, strict=True)], float)
    n = len(task.examples)
    acc, acc_norm = hits.mean(axis=0)
    return {"task": task.name, "shots": shots, "n": n, "acc": acc, "acc_norm": acc_norm,
            "acc_stderr": math.sqrt(acc * (1 - acc) / max(n - 1, 1)),
            "chance": float(np.mean([1 / len(ex.choices) for ex in task.examples]))}


def load_task(name: str, config, limit: int, seed: int) -> Task:
    """A task by name: `next_line` (from the run's validation split) or `jsonl:PATH`."""
    if name.startswith("jsonl:"):
        task = jsonl_task(name[len("jsonl:"):])
        return Task(task.name, task.examples[:limit] if limit else task.examples, task.demos)
    if name == "next_line":
        from scaling.data.api import open_corpus

        corpus, _, _ = open_corpus(config)
        return next_line_task(list(corpus.texts("validation")), limit or 200, seed)
    raise UserError(f"unknown task {name!r}; tasks: next_line, jsonl:PATH")


def eval_command(workdir: str, tasks: list[str], shots: list[int], limit: int,
                 seed: int) -> list[dict]:
    """Evaluate the run's latest checkpoint on every task × shot count; print a table and
    append the results to `workdir/eval.jsonl`."""
    from scaling.checkpoint import check_tokenizer
    from scaling.data.run_tokenizer import run_tokenizer
    from scaling.eval.generate import load_run

    if any(k < 0 for k in shots) or limit < 0:
        raise UserError("--shots must be non-negative integers and --limit >= 0")
    config, params, meta = load_run(workdir)
    tokenizer = run_tokenizer(workdir, config)  # the run's kept copy when it has one
    check_tokenizer(meta, {"tokenizer": {"hash": tokenizer.hash,
                                         "vocab_size": tokenizer.vocab_size}})
    results = []
    for name in tasks:
        task = load_task(name, config, limit, seed)
        for k in shots:
            r = evaluate_task(config.model, params, tokenizer, task, k, seed)
            r["step"] = meta.get("step")
            results.append(r)
            print(f"{r['task']:<24} {k:>2}-shot  acc {r['acc']:.3f} ± {r['acc_stderr']:.3f}  "
                  f"acc_norm {r['acc_norm']:.3f}  (n={r['n']}, chance {r['chance']:.3f})")
    append_rows(os.path.join(workdir, "eval.jsonl"), results, UserError)
    return results
