"""Zero- and few-shot evaluation (GPT-3 §2.4), `scaling eval`: tasks by name, the run read back
sharded, results printed and appended to eval.jsonl. The formats are scored in formats.py
through the batched scorer (scoring.py); `score` here is the plain one-row-per-choice scorer
it is tested against. Letter legend: B batch, T length.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np

from scaling import storage
from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.eval.formats import evaluate_task, prompts_for  # noqa: F401  (public here)
from scaling.eval.prompts import MAX_SHOTS
from scaling.eval.tasks import Task, jsonl_task, next_line_task, yaml_task
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


def load_task(name: str, config, limit: int, seed: int) -> Task:
    """A task by name: `next_line` (from the run's validation split), a built-in synthetic
    task (scaling/eval/synthetic.py), `jsonl:PATH` or `yaml:PATH` (also a bare .yaml path)."""
    from scaling.eval.synthetic import TASKS, synthetic_task

    if name.startswith("jsonl:"):
        task = jsonl_task(name[len("jsonl:"):])
    elif name.startswith("yaml:") or name.endswith((".yaml", ".yml")):
        task = yaml_task(name.removeprefix("yaml:"))
    elif name in TASKS:
        return synthetic_task(name, limit or 100, seed)
    elif name == "next_line":
        from scaling.data.api import open_store

        store = open_store(config, progress=False)
        return next_line_task(list(store.validation.documents(store.tokenizer)), limit or 200,
                              seed)
    else:
        raise UserError(f"unknown task {name!r}; tasks: next_line, jsonl:PATH, yaml:PATH, "
                        f"{', '.join(TASKS)}")
    return dataclasses.replace(task, examples=task.examples[:limit] if limit else task.examples)


def print_result(r: dict) -> None:
    """One line: the task's headline metrics with their standard errors."""
    names = [k for k in ("acc", "acc_norm", "acc_per_token", "acc_uncond", "ppl", "exact_match",
                         "f1", "bits_per_byte", "token_perplexity") if k in r]
    cells = "  ".join(f"{k} {r[k]:.3f}" + (f" ± {r[k + '_stderr']:.3f}"
                                          if k + "_stderr" in r else "") for k in names)
    extra = f", chance {r['chance']:.3f}" if "chance" in r else ""
    trunc = f", {r['truncated']} prompts cut" if r.get("truncated") else ""
    print(f"{r['task']:<24} {r['shots']:>3}-shot (used {r['shots_used']})  {cells}  "
          f"(n={r['n']}{extra}{trunc})", flush=True)


def open_run(workdir: str):
    """(config, params, checkpoint metadata, tokenizer, Scorer) of a causal decoder run's
    latest checkpoint, restored sharded on the run's mesh (or what of it this host has)."""
    from scaling.checkpoint.load import load_run
    from scaling.eval.scoring import Scorer

    run = load_run(workdir, check=_can_score, tokenizer=True)  # the run's copy if it keeps one
    return run.config, run.params, run.meta, run.tokenizer, Scorer(
        run.config.model, run.mesh, run.shardings, progress=True)


def _can_score(config, workdir: str) -> None:
    """What language-model evaluation refuses (load_run's `check`)."""
    from scaling.checkpoint.load import refuse_finetuned

    refuse_finetuned(config, workdir, "language-model evaluation (few-shot and lm-eval tasks)")
    if family_of(config.model).decoder is None:
        raise UserError(f"{workdir} is not a causal decoder run (gpt family); few-shot "
                        f"evaluation needs one")


def eval_command(workdir: str, tasks: list[str], shots: list[int], limit: int, seed: int,
                 show_prompt: bool = False, log_samples: bool = False,
                 output: str | None = None) -> list[dict]:
    """Evaluate the run's latest checkpoint (restored sharded on the run's mesh, or on what of
    it this host has) on every task × shot count; print a line per result and append the
    results to `workdir/eval.jsonl` (and all of them, per-example scores with --log-samples,
    as JSON to `output`). Results are printed before any file is written."""
    if any(k < 0 and k != MAX_SHOTS for k in shots) or limit < 0:
        raise UserError("--shots must be non-negative integers (or max) and --limit >= 0")
    config, params, meta, tokenizer, scorer = open_run(workdir)
    results = []
    for name in tasks:
        task = load_task(name, config, limit, seed)
        for k in shots:
            if show_prompt:
                p = prompts_for(task, k, seed, tokenizer, config.model.max_len)[0]
                print(f"--- {task.name}, {k}-shot, seed {seed}, example 0 ---\n{p.text}\n---")
            r = evaluate_task(config.model, params, tokenizer, task, k, seed, scorer,
                              samples=log_samples)
            r["step"] = meta.get("step")
            results.append(r)
            print_result(r)
    summary = [{k: v for k, v in r.items() if k != "samples"} for r in results]
    if output or log_samples:
        _write_json(output or storage.join(workdir, "eval_samples.json"), results)
    append_rows(storage.join(workdir, "eval.jsonl"), summary, UserError)
    return results


def _write_json(path: str, results: list[dict]) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"results": results}, f, indent=1)
    except OSError as e:
        raise UserError(f"cannot write results to {path}: {e.strerror} (they are printed "
                        f"above)") from None
