"""Few-shot tasks evaluated during training (`train.eval_tasks`, "NAME[@SHOTS],..."): a hook
factory the training loop runs on its evaluation interval (scaling/train/loop.py
`standard_hooks`), on the parameters as they train, sharded as they are."""

from __future__ import annotations

LIMIT = 64  # examples per task at each evaluation

METRICS = ("acc", "acc_norm", "exact_match", "f1", "bits_per_byte")


def fewshot_hook(run, writer):
    """The hook for `run`, or None when it has no eval_tasks or no causal decoder. It logs
    eval_<task>_<K>shot_<metric> rows to metrics.jsonl and TensorBoard."""
    t = run.config.train
    if not t.eval_tasks or run.family.decoder is None:
        return None
    from scaling.eval.formats import evaluate_task
    from scaling.eval.harness import load_task
    from scaling.eval.scoring import Scorer
    from scaling.task_names import parse_eval_tasks

    state = {}

    def evaluate(info) -> None:
        if not state:
            state["scorer"] = Scorer(run.resolved.model, run.mesh, run.shardings.params)
            state["tasks"] = [(load_task(n, run.config, LIMIT, t.seed), k)
                              for n, k in parse_eval_tasks(t.eval_tasks)]
        row = {}
        for task, k in state["tasks"]:
            r = evaluate_task(run.resolved.model, run.state.params, run.data.tokenizer, task, k,
                              t.seed, state["scorer"])
            row.update({f"eval_{task.name}_{k}shot_{m}": r[m] for m in METRICS if m in r})
        writer.write(info.step, row)

    return evaluate
