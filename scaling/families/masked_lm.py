"""Masked language modelling (BERT, Devlin et al. 2019 §3.1): predict the selected tokens;
with next-sentence labels in the batch, NSP is added as in the paper."""

from __future__ import annotations

from scaling.families.registry import BatchField, LossTerms, Objective

FIELDS = (
    BatchField("inputs"),  # [B, T] ids with the selected positions masked / replaced
    BatchField("targets"),  # [B, T] the original tokens
    BatchField("weights", "float32", fill="weights"),  # [B, T] 1 at selected positions
    BatchField("type_ids", fill="zeros"),  # [B, T] sentence A (0) / B (1)
    BatchField("positions", fill="positions"),  # [B, T]
    BatchField("segment_ids", fill="segments"),  # [B, T] document id, 0 = padding
)


def loss(outputs, batch: dict, config=None) -> LossTerms:
    """Masked-LM cross entropy over the selected positions, plus NSP when labels are given:
    total / weight = MLM mean + NSP mean for one batch (§3.1)."""
    import jax.numpy as jnp  # lazy: the registry imports no JAX
    import optax

    from scaling.models.losses import token_accuracy, token_losses

    mlm_logits, nsp_logits = outputs  # [B, T, V], [B, 2]
    z_loss = config.optim.z_loss if config is not None else 0.0
    total, weight = token_losses(mlm_logits, batch["targets"], batch["weights"], z_loss)
    metrics = {"mlm_accuracy": token_accuracy(mlm_logits, batch["targets"], batch["weights"])}
    if "nsp_labels" in batch:
        nsp = optax.softmax_cross_entropy_with_integer_labels(nsp_logits, batch["nsp_labels"])
        total = total + jnp.mean(nsp) * weight
        hit = (jnp.argmax(nsp_logits, -1) == batch["nsp_labels"]).astype(jnp.float32)
        metrics["nsp_accuracy"] = (jnp.sum(hit), jnp.asarray(hit.size, jnp.float32))
    return LossTerms(total, weight, metrics)


def load_data(config, **kwargs):
    from scaling.data.api import load_mlm_data  # lazy: tfds/grain only when data is built

    return load_mlm_data(config, **kwargs)


OBJECTIVE = Objective("masked_lm", FIELDS, loss, load_data, metrics=("mlm_accuracy",),
                      description="BERT masked-LM over packed documents (RoBERTa-style)")
