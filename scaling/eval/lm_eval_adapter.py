"""Our model behind lm-evaluation-harness's `LM` interface, so its task library (or YAML
task files in a directory, its --include_path) runs on our checkpoints:
`scaling eval --workdir RUN --harness TASK[,TASK...]` (extra: pip install -e ".[lm-eval]").

Requests go through the same batched scorer and generator as `scaling eval`, encoded as
lm-eval's own `hf` model encodes them (scaling/eval/encoding.py): the (context, continuation)
pair as one string, bos first only where the run's convention has it, so its numbers are
lm-eval's for the same model.
"""

from __future__ import annotations

import json

from scaling.errors import UserError


def _lm_base():
    try:
        from lm_eval.api.model import LM
    except ImportError:
        raise UserError("--harness needs lm-evaluation-harness: pip install -e \".[lm-eval]\"") \
            from None
    return LM


def make_lm(model, params, tokenizer, scorer, batch: int = 8):
    """An lm_eval `LM` scoring with `scorer` (scaling.eval.scoring.Scorer)."""
    from scaling.eval.encoding import encode_pair, encode_prompt, prefix_token
    from scaling.eval.formats import rolling_requests
    from scaling.eval.generate import generate_batch
    from scaling.eval.scoring import Request

    class ScalingLM(_lm_base()):
        def loglikelihood(self, requests, disable_tqdm: bool = False):
            reqs = [Request(*encode_pair(tokenizer, c, x)) for c, x in (r.args for r in requests)]
            logp, greedy = scorer.score(params, reqs, progress=not disable_tqdm)
            return [(float(lp), bool(g)) for lp, g in zip(logp, greedy, strict=True)]

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            reqs, spans = [], []
            for (text,) in (r.args for r in requests):
                start = len(reqs)
                ids = [prefix_token(tokenizer), *tokenizer.encode(text)]  # lm-eval's windows
                reqs += rolling_requests(ids, model.max_len)
                spans.append((start, len(reqs)))
            logp, _ = scorer.score(params, reqs, progress=not disable_tqdm)
            return [float(logp[a:b].sum()) for a, b in spans]

        def generate_until(self, requests, disable_tqdm: bool = False):
            """Greedy continuations, batched among requests with the same stops and length."""
            groups: dict = {}
            for i, (context, kwargs) in enumerate(r.args for r in requests):
                until = kwargs.get("until") or []
                until = (until,) if isinstance(until, str) else tuple(until)
                new = min(int(kwargs.get("max_gen_toks", 32)), model.max_len // 2)
                groups.setdefault((until, new), []).append(
                    (i, list(encode_prompt(tokenizer, context))))
            out = [""] * len(requests)
            for (until, new), items in groups.items():
                texts, _ = generate_batch(model, params, tokenizer, [ids for _, ids in items],
                                          new_tokens=new, stop=until, batch=batch,
                                          mesh=scorer.mesh)
                for (i, _), text in zip(items, texts, strict=True):
                    out[i] = text
            return out

    return ScalingLM()


def run_harness(lm, tasks: list[str], include: str | None, shots: int, limit: int,
                samples: bool = False) -> dict:
    """lm_eval.simple_evaluate on `lm`; returns its results dict (with its per-example
    "samples" when `samples`)."""
    _lm_base()
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=include) if include else TaskManager()
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        where = f" or in {include}" if include else " (add --harness-include DIR for YAML files)"
        raise UserError(f"--harness: lm-eval has no task {unknown[0]!r}{where}")
    return simple_evaluate(model=lm, tasks=tasks, num_fewshot=shots, limit=limit or None,
                           task_manager=manager, log_samples=samples)


def harness_command(workdir: str, tasks: str, include: str | None, shots: int, limit: int,
                    output: str | None) -> int:
    """`scaling eval --harness`: print lm-eval's results table, write its JSON (with its
    per-example samples) to `output`."""
    from scaling.eval.fewshot import open_run

    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if not names:
        raise UserError("--harness: name at least one lm-eval task")
    _lm_base()
    config, params, _, tokenizer, scorer = open_run(workdir)
    results = run_harness(make_lm(config.model, params, tokenizer, scorer), names, include,
                          shots, limit, samples=output is not None)
    from lm_eval.utils import make_table

    print(make_table(results), flush=True)
    if output:
        try:
            with open(output, "w", encoding="utf-8") as f:
                json.dump(results, f, indent=1, default=str)
        except OSError as e:
            raise UserError(f"cannot write {output}: {e.strerror} (results printed above)") \
                from None
    return 0
