"""What the fine-tuning objectives share (bert_task.py, gpt_task.py): the task loss by task
type, and the task data pipeline (scaling/data/sources/task_files.py, task_rows.py).

Legend: B batch, K head outputs (classes, 1 for regression, C choices).
"""

from __future__ import annotations


def task_terms(logits, labels, task_type: str):
    """Per-example task losses [B] and metric sums: cross entropy over classes or choices
    (accuracy logged), squared error for regression (logits [B, 1])."""
    import jax.numpy as jnp  # lazy: the registry imports no JAX
    import optax

    B = labels.shape[0]
    count = jnp.asarray(B, jnp.float32)
    if task_type == "regression":
        losses = jnp.square(logits[:, 0] - labels)  # [B]
        return losses, {}
    ids = labels.astype(jnp.int32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, ids)  # [B]
    hit = (jnp.argmax(logits, -1) == ids).astype(jnp.float32)
    return losses, {"accuracy": (jnp.sum(hit), count)}


def num_outputs(config) -> int:
    ft = config.finetune
    return ft.num_labels if ft.task_type == "classification" else 1


def load_task_data(config, row_fn_name: str, field_names, *, process_index=None,
                   process_count=None, progress: bool = True):
    """FinetuneData of config.finetune.task with the backbone's tokenizer (rebuilt from the
    run's data settings, so its hash is the backbone's)."""
    from scaling.data.api import _common, _processes, data_tokenizer
    from scaling.data.batches import task_rows as encode
    from scaling.data.sources.task_files import load_task

    tokenizer = data_tokenizer(config, progress)
    tokenizer.add_bos = config.data.bos_prefix  # the backbone's convention (gpt_row)
    encode.check_specials(tokenizer, ("cls", "sep") if row_fn_name == "bert_row"
                          else ("bos", "sep", "cls") if config.data.bos_prefix else ("sep", "cls"))
    task = load_task(config.finetune, config.data)
    common = _common(config, "task", tokenizer, *_processes(process_index, process_count))
    common["dataset_key"] = f"task:{config.finetune.task}/{tokenizer.hash[:16]}"
    return encode.FinetuneData(task=task, row_fn=getattr(encode, row_fn_name),
                               field_names=tuple(field_names), seq_len=config.seq_len,
                               **common)


# The published fine-tuning recipes, as --set overrides (the user's own --set win):
# BERT §4 / §A.3: Adam lr in {5e-5, 3e-5, 2e-5}, batch 32, 3 epochs, linear decay after 10%
# warmup (as in the released run_classifier.py), weight decay 0.01, dropout 0.1.
# GPT-1 §4.1 (fine-tuning details): lr 6.25e-5, batch 32, 3 epochs, dropout 0.1 on the
# classifier, linear decay with warmup over 0.2% of training, λ = 0.5, L2 w = 0.01.
RECIPES = {
    "classify": {"optim.lr": "5e-5", "optim.weight_decay": "0.01",
                 "optim.schedule": "linear_decay", "optim.min_lr_ratio": "0",
                 "train.global_batch": "32", "model.dropout": "0.1", "model.attn_dropout": "0.1"},
    "gpt_classify": {"optim.lr": "6.25e-5", "optim.weight_decay": "0.01",
                     "optim.schedule": "linear_decay", "optim.min_lr_ratio": "0",
                     "train.global_batch": "32", "model.dropout": "0.1",
                     "model.attn_dropout": "0.1", "finetune.lm_weight": "0.5"},
}
WARMUP_FRACTION = {"classify": 0.1, "gpt_classify": 0.002}
