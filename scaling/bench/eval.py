"""`scaling bench eval --config P`: scoring throughput (requests/s) of the batched scorer
(scaling/eval/scoring.py: a context encoded once, its choices read the cache) against the
plain one-row-per-choice scorer (scaling/eval/fewshot.py's score), and generation
tokens/s, on the preset's model with random weights (speed does not depend on them).
Not run in CI."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn


def _timed(fn, repeats: int = 2) -> float:
    fn()  # compilation
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def bench_eval(config, questions: int = 64, choices: int = 4, context: int = 48,
               choice_len: int = 6, new_tokens: int = 32) -> int:
    """Print requests/s of both scorers on `questions` × `choices` requests and the
    generation speed of `questions` prompts, batch 8."""
    from scaling.eval.fewshot import pack_choice, score
    from scaling.eval.generate import generate_batch
    from scaling.eval.scoring import Request, local_scorer
    from scaling.models.gpt import GPT
    from scaling.platform import resolve

    model = resolve(config, jax.devices()[:1]).model
    T = model.max_len
    context = min(context, T - choice_len)
    init = jax.jit(lambda k: GPT(model).init(k, jnp.zeros((1, 8), jnp.int32)))
    params = nn.unbox(init(jax.random.key(0))["params"])
    rng = np.random.default_rng(0)
    reqs = []
    for _ in range(questions):
        ctx = tuple(int(x) for x in rng.integers(10, model.vocab_size, context))
        reqs += [Request(ctx, tuple(int(x) for x in rng.integers(10, model.vocab_size,
                                                                  choice_len)))
                 for _ in range(choices)]
    rows = [pack_choice(list(r.context), list(r.continuation), T) for r in reqs]
    plain = _timed(lambda: score(model, params, rows, batch=32))
    scorer = local_scorer(model, params, contexts=8)
    batched = _timed(lambda: scorer.score(params, reqs))
    n = len(reqs)
    print(f"{config.name}: {n} requests ({questions} contexts of {context} tokens × {choices} "
          f"choices of {choice_len})")
    print(f"  plain scorer (a full row per choice, batch 32): {n / plain:,.0f} requests/s")
    print(f"  batched scorer (context encoded once, 8 contexts × {choices} choices): "
          f"{n / batched:,.0f} requests/s ({plain / batched:.1f}x)")

    class Ids:  # token ids pass through: no text is needed for speed
        bos_id, eos_id = 1, -1

        def decode(self, ids):
            return ""

    prompts = [list(r.context) for r in reqs[::choices]]
    new_tokens = min(new_tokens, T - 8)
    generate_batch(model, params, Ids(), prompts[:8], new_tokens=new_tokens)  # compile
    _, stats = generate_batch(model, params, Ids(), prompts, new_tokens=new_tokens)
    print(f"  generation, greedy, batch 8, {new_tokens} new tokens: "
          f"{stats['tokens_per_sec']:,.0f} tokens/s")
    return 0
