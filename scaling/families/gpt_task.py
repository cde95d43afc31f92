"""GPT-1 fine-tuning (Radford et al. 2018 §3.2-3.3): a linear head on the extract token's
final state, plus the language-model loss as an auxiliary objective,

    L = L_task + λ·L_LM        (λ = finetune.lm_weight, 0.5 in the paper; 0 = off)

Both are sums over examples of per-example means (the LM term: the mean next-token loss of
the example's row), so microbatches and devices add up exactly; `task_loss` and `lm_loss`
are logged apart."""

from __future__ import annotations

from scaling.families.registry import BatchField, LossTerms, Objective
from scaling.families.task_head import load_task_data, num_outputs, task_terms

FIELDS = (
    BatchField("inputs"),  # [B, T] `start A (delim B) extract` (C choices side by side)
    BatchField("targets", fill="next", source="inputs"),  # [B, T] next token in the row
    BatchField("positions", fill="positions"),  # [B, T]
    BatchField("segment_ids", fill="segments"),  # [B, T] 1 on tokens, 0 on padding
    BatchField("weights", "float32", fill="weights"),  # [B, T] 1 where the LM target counts
    BatchField("labels", "float32", rank=1, fill="labels"),  # [B] class, score or choice
)


def make_model(config, mode: str = "eval", implementation: str = "xla"):
    from scaling.models.heads import GPTTaskModel  # lazy: the registry imports no JAX

    ft = config.finetune
    return GPTTaskModel(config.model, num_outputs(config), ft.num_choices,
                        deterministic=mode != "train", implementation=implementation)


def lm_losses(lm_logits, targets, weights):
    """[B] each row's mean next-token cross entropy over its weighted positions."""
    import jax
    import jax.numpy as jnp

    log_z = jax.nn.logsumexp(lm_logits, axis=-1)  # [B, T]
    target_logit = jnp.take_along_axis(lm_logits, targets[..., None], axis=-1)[..., 0]
    per_token = (log_z - target_logit) * weights  # [B, T]
    return jnp.sum(per_token, -1) / jnp.maximum(jnp.sum(weights, -1), 1.0)


def loss(outputs, batch: dict, config=None) -> LossTerms:
    import jax.numpy as jnp

    logits, lm_logits = outputs  # [B, K], [B, T, V]
    losses, metrics = task_terms(logits, batch["labels"], config.finetune.task_type)
    task, count = jnp.sum(losses), jnp.asarray(losses.shape[0], jnp.float32)
    lm = jnp.sum(lm_losses(lm_logits, batch["targets"], batch["weights"]))
    lam = config.finetune.lm_weight
    total = task + lam * lm if lam else task  # λ = 0: exactly the task loss
    return LossTerms(total, count, {**metrics, "task_loss": (task, count),
                                    "lm_loss": (lm, count)})


def load_data(config, **kwargs):
    return load_task_data(config, "gpt_row", [f.name for f in FIELDS], **kwargs)


def _task_outputs(outputs):
    return outputs[0]  # [B, K] (the LM logits are not needed)


OBJECTIVE = Objective("gpt_classify", FIELDS, loss, load_data,
                      metrics=("task_loss", "lm_loss", "accuracy"),
                      description="GPT-1 task head on the extract token + auxiliary LM loss",
                      make_model=make_model, task_logits=_task_outputs)
