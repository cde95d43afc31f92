"""Scoring each of GPT-3's task formats (§2.4) from a task, a shot count and a seed.

- multiple_choice: Σ log p(choice | prompt) → `acc`; per token → `acc_per_token`; per
  character (lm-evaluation-harness's `acc_norm`) → `acc_norm`; log p(choice | prompt) −
  log p(choice | unconditional context), GPT-3's normalization → `acc_uncond`;
- cloze: `acc` = the target is the greedy continuation (LAMBADA), `ppl` = exp(−mean Σ log p);
- generate: greedy to a stop sequence, `exact_match` and `f1` (SQuAD normalization);
- rolling: Σ log p of whole documents in windows of max_len − 1 tokens, `bits_per_byte`,
  `token_perplexity`, `word_perplexity`.
"""

from __future__ import annotations

import math
import random
import sys

import numpy as np

from scaling.eval import answer_metrics
from scaling.eval.encoding import encode_prompt, prefix_token
from scaling.eval.prompts import MAX_SHOTS, build_prompt, demo_text
from scaling.eval.scoring import Request, local_scorer
from scaling.eval.tasks import Task


def _reserve(task: Task, ex, enc) -> int:
    """Tokens the answer needs after the prompt."""
    kind = task.spec.kind
    if kind == "generate":
        return task.spec.max_new_tokens
    delim = " " if kind == "cloze" and task.spec.blank else task.spec.target_delimiter
    return max(len(enc(delim + c)) for c in ex.choices)


def prompts_for(task: Task, shots: int, seed: int, tokenizer, max_len: int) -> list:
    """The prompt of every example for this seed (demonstrations dropped from the left when
    the prompt + answer would not fit max_len)."""
    rng, enc = random.Random(seed), tokenizer.encode
    out = []
    for ex in task.examples:
        need = _reserve(task, ex, enc) if task.spec.kind != "rolling" else 0
        fits = lambda text, need=need: len(encode_prompt(tokenizer, text)) + need <= max_len  # noqa: E731
        out.append(build_prompt(task, ex, shots, rng, fits))
    return out


def evaluate_task(model, params, tokenizer, task: Task, shots: int, seed: int = 0,
                  scorer=None, samples: bool = False) -> dict:
    """The task's metrics (with standard errors) at `shots` demonstrations; `samples` adds
    every example's prompt and scores under "samples"."""
    scorer = scorer or local_scorer(model, params)
    if task.spec.kind == "rolling":
        shots = 0  # a document is scored alone
    if shots > len(task.demos):
        print(f"scaling: note: {task.name}: {shots} shots asked, the pool has "
              f"{len(task.demos)} demonstrations; using those", file=sys.stderr)
    prompts = prompts_for(task, shots, seed, tokenizer, model.max_len)
    fn = {"multiple_choice": _multiple_choice, "cloze": _cloze, "generate": _generate,
          "rolling": _rolling}[task.spec.kind]
    scores, rows = fn(model, params, tokenizer, task, prompts, scorer)
    result = {"task": task.name, "kind": task.spec.kind,
              "shots": "max" if shots == MAX_SHOTS else shots,
              "shots_used": min((p.shots for p in prompts), default=0),
              "n": len(task.examples), "truncated": sum(p.truncated for p in prompts)}
    for name, values in scores.items():
        result[name] = float(np.mean(values)) if isinstance(values, list) else values
        if isinstance(values, list):
            result[f"{name}_stderr"] = answer_metrics.stderr(values)
    if task.spec.kind == "multiple_choice":
        result["chance"] = float(np.mean([1 / len(ex.choices) for ex in task.examples]))
    if samples:
        result["samples"] = [{"prompt": p.text, **r} for p, r in zip(prompts, rows, strict=True)]
    return result


def _multiple_choice(model, params, tok, task, prompts, scorer):
    spec, enc = task.spec, tok.encode
    uncond = encode_prompt(tok, spec.unconditional_context)
    reqs, spans = [], []
    for ex, p in zip(task.examples, prompts, strict=True):
        ctx, start = encode_prompt(tok, p.text), len(reqs)
        conts = [tuple(enc(spec.target_delimiter + c)) for c in ex.choices]
        reqs += [Request(ctx, c) for c in conts] + [Request(uncond, c) for c in conts]
        spans.append((start, len(conts)))
    logp, _ = scorer.score(params, reqs)
    scores = {k: [] for k in ("acc", "acc_per_token", "acc_norm", "acc_uncond")}
    rows = []
    for ex, (a, n) in zip(task.examples, spans, strict=True):
        lp, lp_u = logp[a:a + n], logp[a + n:a + 2 * n]
        ntok = np.array([len(reqs[a + i].continuation) for i in range(n)])
        nchar = np.array([len(spec.target_delimiter + c) for c in ex.choices])
        for name, v in (("acc", lp), ("acc_per_token", lp / ntok), ("acc_norm", lp / nchar),
                        ("acc_uncond", lp - lp_u)):
            scores[name].append(float(np.argmax(v) == ex.answer))
        rows.append({"answer": ex.answer, "logp": lp.tolist(), "logp_uncond": lp_u.tolist(),
                     "tokens": ntok.tolist(), "chars": nchar.tolist()})
    return scores, rows


def _cloze(model, params, tok, task, prompts, scorer):
    delim = " " if task.spec.blank else task.spec.target_delimiter
    reqs = [Request(encode_prompt(tok, p.text), tuple(tok.encode(delim + ex.choices[0])))
            for ex, p in zip(task.examples, prompts, strict=True)]
    logp, greedy = scorer.score(params, reqs)
    return ({"acc": [float(g) for g in greedy],
             "ppl": math.exp(-float(np.mean(logp)))},
            [{"target": ex.choices[0], "logp": float(lp), "greedy": bool(g)}
             for ex, lp, g in zip(task.examples, logp, greedy, strict=True)])


def _generate(model, params, tok, task, prompts, scorer):
    from scaling.eval.generate import generate_batch

    ids = [list(encode_prompt(tok, p.text)) for p in prompts]
    texts, _ = generate_batch(model, params, tok, ids, new_tokens=task.spec.max_new_tokens,
                              stop=task.spec.stop, mesh=scorer.mesh)
    answers = [t.strip() for t in texts]
    return ({"exact_match": [answer_metrics.exact_match(a, ex.choices)
                                    for a, ex in zip(answers, task.examples, strict=True)],
             "f1": [answer_metrics.token_f1(a, ex.choices)
                    for a, ex in zip(answers, task.examples, strict=True)]},
            [{"generated": t, "answers": list(ex.choices)}
             for t, ex in zip(texts, task.examples, strict=True)])


def rolling_requests(ids: list[int], max_len: int) -> list[Request]:
    """Disjoint windows of max_len − 1 predicted tokens covering ids[1:], each after as much
    of the preceding text as fits (the scorer cuts the context from the left)."""
    W = max_len - 1
    return [Request(tuple(ids[:s]), tuple(ids[s:s + W])) for s in range(1, len(ids), W)]


def _rolling(model, params, tok, task, prompts, scorer):
    reqs, spans = [], []
    for ex in task.examples:
        ids = [prefix_token(tok), *tok.encode(demo_text(task, ex))]  # lm-eval's windows
        spans.append((len(reqs), len(ids) - 1))
        reqs += rolling_requests(ids, model.max_len)
    logp, _ = scorer.score(params, reqs)
    ends = [a for a, _ in spans[1:]] + [len(reqs)]
    total = [float(logp[a:b].sum()) for (a, _), b in zip(spans, ends, strict=True)]
    n_bytes = sum(len(ex.context.encode("utf-8")) for ex in task.examples)
    n_words = sum(len(ex.context.split()) for ex in task.examples)
    n_tokens = sum(n for _, n in spans)
    return ({"bits_per_byte": answer_metrics.bits_per_byte(sum(total), n_bytes),
             "token_perplexity": math.exp(-sum(total) / max(n_tokens, 1)),
             "word_perplexity": math.exp(-sum(total) / max(n_words, 1))},
            [{"logp": t, "tokens": n} for t, (_, n) in zip(total, spans, strict=True)])
