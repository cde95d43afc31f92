"""Causal language modelling (GPT-1/2/3): predict every next token of packed documents."""

from __future__ import annotations

from scaling.families.registry import BatchField, LossTerms, Objective

FIELDS = (
    BatchField("inputs"),  # [B, T] token ids
    BatchField("targets", fill="next", source="inputs"),  # [B, T] the next token at each position
    BatchField("positions", fill="positions"),  # [B, T] position within its document
    BatchField("segment_ids", fill="segments"),  # [B, T] document id, 0 = padding
    BatchField("weights", "float32", fill="weights"),  # [B, T] 1 where the target counts
)


def loss(logits, batch: dict, config=None) -> LossTerms:
    """Next-token cross entropy summed over weighted positions (plus optim.z_loss), and
    token accuracy."""
    from scaling.models.losses import (  # lazy: the registry imports no JAX
        token_accuracy,
        token_losses,
    )

    z_loss = config.optim.z_loss if config is not None else 0.0
    total, weight = token_losses(logits, batch["targets"], batch["weights"], z_loss)
    return LossTerms(total, weight,
                     {"accuracy": token_accuracy(logits, batch["targets"], batch["weights"])})


def load_data(config, **kwargs):
    from scaling.data.api import load_lm_data  # lazy: tfds/grain only when data is built

    return load_lm_data(config, **kwargs)


OBJECTIVE = Objective("causal_lm", FIELDS, loss, load_data, metrics=("accuracy",),
                      description="next-token prediction over packed documents")
