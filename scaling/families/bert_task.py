"""BERT fine-tuning (Devlin et al. 2019 §4): a linear head on the pooled [CLS] state for
classification, regression and multiple choice; single sentences and pairs."""

from __future__ import annotations

from scaling.families.registry import BatchField, LossTerms, Objective
from scaling.families.task_head import load_task_data, num_outputs, task_terms

FIELDS = (
    BatchField("inputs"),  # [B, T] `[CLS] A [SEP] (B [SEP])` (C choices side by side)
    BatchField("type_ids", fill="zeros"),  # [B, T] 0 for A, 1 for B
    BatchField("positions", fill="positions"),  # [B, T]
    BatchField("segment_ids", fill="segments"),  # [B, T] 1 on tokens, 0 on padding
    BatchField("labels", "float32", rank=1, fill="labels"),  # [B] class, score or choice
)


def make_model(config, mode: str = "eval", implementation: str = "xla"):
    from scaling.models.heads import BertTaskModel  # lazy: the registry imports no JAX

    ft = config.finetune
    return BertTaskModel(config.model, num_outputs(config), ft.num_choices,
                         deterministic=mode != "train", implementation=implementation)


def loss(logits, batch: dict, config=None) -> LossTerms:
    """Σ task loss over the batch (cross entropy, or squared error for regression)."""
    import jax.numpy as jnp

    losses, metrics = task_terms(logits, batch["labels"], config.finetune.task_type)
    total, count = jnp.sum(losses), jnp.asarray(losses.shape[0], jnp.float32)
    return LossTerms(total, count, {**metrics, "task_loss": (total, count)})


def load_data(config, **kwargs):
    return load_task_data(config, "bert_row", [f.name for f in FIELDS], **kwargs)


def _identity(outputs):
    return outputs  # [B, K] the head's outputs


OBJECTIVE = Objective("classify", FIELDS, loss, load_data, metrics=("task_loss", "accuracy"),
                      description="BERT task head on [CLS] (classification, regression, "
                                  "multiple choice)",
                      make_model=make_model, task_logits=_identity)
