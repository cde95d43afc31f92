"""Zero- and few-shot evaluation (GPT-3 §2.4): tasks by name, scored on a run's parameters;
in training (`train.eval_tasks`, "NAME[@SHOTS],...": the parameters as they train, sharded as
they are, rows eval_<task>_<K>shot_<metric> in metrics.jsonl) and in `scaling eval --tasks`
(the run read back sharded, results printed and appended to eval.jsonl). The formats are
scored in formats.py through the batched scorer (scoring.py); `score` here is the plain
one-row-per-choice scorer it is tested against. Letter legend: B batch, T length.
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


class FewShot:
    """The evaluator: parameters in, one result row per (task, shots) pair out (its metrics
    with standard errors, `n`, `shots_used`; per-example prompts and scores under "samples"
    when `samples`). `show_prompt` prints each pair's first prompt before scoring it."""

    def __init__(self, model: ModelConfig, tokenizer, scorer, pairs: list[tuple[Task, int]],
                 seed: int, samples: bool = False, show_prompt: bool = False):
        self.model, self.tokenizer, self.scorer = model, tokenizer, scorer
        self.pairs, self.seed, self.samples, self.show_prompt = pairs, seed, samples, show_prompt

    def __call__(self, params):
        """The rows, one at a time (a command prints each as it comes)."""
        for task, k in self.pairs:
            if self.show_prompt:
                p = prompts_for(task, k, self.seed, self.tokenizer, self.model.max_len)[0]
                print(f"--- {task.name}, {k}-shot, seed {self.seed}, example 0 ---\n{p.text}\n---")
            yield evaluate_task(self.model, params, self.tokenizer, task, k, self.seed,
                                self.scorer, samples=self.samples)


IN_TRAINING_LIMIT = 64  # examples per task at each evaluation in training
IN_TRAINING_METRICS = ("acc", "acc_norm", "exact_match", "f1", "bits_per_byte")


def in_training(config):
    """With train.eval_tasks: the `fewshot` evaluation, every task at each evaluation on the
    first IN_TRAINING_LIMIT examples; none for a run without a causal decoder or with a task
    head (its parameters are a classifier's)."""
    from scaling.eval.task_names import parse_eval_tasks
    from scaling.families import objective_of

    t = config.train
    if not t.eval_tasks:
        return None
    names = parse_eval_tasks(t.eval_tasks)  # a ConfigError now, before any device work
    if objective_of(config).task_logits is not None:
        return None
    from scaling.train.hooks import Evaluation

    def start(run):
        if run.family.decoder is None:
            return None
        built = {}

        def evaluate(state, step) -> dict:
            if not built:  # the first evaluation builds the scorer and the tasks
                from scaling.eval.scoring import Scorer

                pairs = [(load_task(n, run.config, IN_TRAINING_LIMIT, t.seed), k)
                         for n, k in names]
                scorer = Scorer(run.resolved.model, run.mesh, run.shardings.params)
                built["fewshot"] = FewShot(run.resolved.model, run.data.tokenizer, scorer,
                                           pairs, t.seed)
            fewshot = built["fewshot"]
            return {f"eval_{task.name}_{k}shot_{m}": r[m]
                    for (task, k), r in zip(fewshot.pairs, fewshot(state.params), strict=True)
                    for m in IN_TRAINING_METRICS if m in r}

        return evaluate

    return Evaluation("fewshot", start)


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
    loaded = [load_task(name, config, limit, seed) for name in tasks]
    pairs = [(task, k) for task in loaded for k in shots]
    fewshot = FewShot(config.model, tokenizer, scorer, pairs, seed, samples=log_samples,
                      show_prompt=show_prompt)
    results = []
    for r in fewshot(params):
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
