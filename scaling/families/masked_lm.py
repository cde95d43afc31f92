"""Masked language modelling (BERT, Devlin et al. 2019 §3.1): predict the selected tokens;
with `data.nsp` the batches are sentence pairs with next-sentence labels and NSP is added to
the loss as in the paper (scaling/data/batches/nsp.py); without, RoBERTa-style packed documents."""

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
NSP_FIELDS = (
    BatchField("nsp_labels", rank=1, fill="labels", classes=2),  # [B] 0 IsNext, 1 NotNext
)


def extra_fields(config) -> tuple[BatchField, ...]:
    """`nsp_labels` when the run pretrains with next-sentence prediction (data.nsp)."""
    return NSP_FIELDS if config.data.nsp else ()


def loss(outputs, batch: dict, config=None) -> LossTerms:
    """Masked-LM cross entropy over the selected positions, plus NSP when labels are given:
    total / weight = MLM mean + NSP mean for one batch (§3.1). Metrics: mlm_accuracy and
    mlm_loss; with labels also nsp_accuracy and nsp_loss."""
    import jax.numpy as jnp  # lazy: the registry imports no JAX
    import optax

    from scaling.models.losses import token_accuracy, token_losses

    mlm_logits, nsp_logits = outputs  # [B, T, V], [B, 2]
    z_loss = config.optim.z_loss if config is not None else 0.0
    total, weight = token_losses(mlm_logits, batch["targets"], batch["weights"], z_loss)
    metrics = {"mlm_accuracy": token_accuracy(mlm_logits, batch["targets"], batch["weights"]),
               "mlm_loss": (total, weight)}
    if "nsp_labels" in batch:
        nsp = optax.softmax_cross_entropy_with_integer_labels(nsp_logits, batch["nsp_labels"])
        total = total + jnp.mean(nsp) * weight
        hit = (jnp.argmax(nsp_logits, -1) == batch["nsp_labels"]).astype(jnp.float32)  # [B]
        count = jnp.asarray(hit.size, jnp.float32)
        metrics["nsp_accuracy"] = (jnp.sum(hit), count)
        metrics["nsp_loss"] = (jnp.sum(nsp), count)
    return LossTerms(total, weight, metrics)


def load_data(config, **kwargs):
    from scaling.data.api import load_mlm_data  # lazy: tfds/grain only when data is built

    return load_mlm_data(config, **kwargs)


OBJECTIVE = Objective("masked_lm", FIELDS, loss, load_data,
                      metrics=("mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss"),
                      description="BERT masked-LM over packed documents (RoBERTa-style), or "
                                  "over sentence pairs with next-sentence prediction (data.nsp)",
                      options=("data.nsp",), extra_fields=extra_fields)
