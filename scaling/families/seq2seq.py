"""Sequence to sequence (Vaswani et al. 2017): predict the target given the source."""

from __future__ import annotations

from scaling.families.registry import BatchField, LossTerms, Objective
from scaling.models.losses import token_accuracy, token_losses

FIELDS = (
    BatchField("inputs"),  # [B, S] source ids
    BatchField("input_positions", fill="positions"),  # [B, S]
    BatchField("input_segment_ids", fill="segments"),  # [B, S] 1 = source token, 0 = pad
    BatchField("decoder_inputs"),  # [B, T] target shifted right (starts with bos)
    BatchField("positions", fill="positions"),  # [B, T]
    BatchField("segment_ids", fill="segments"),  # [B, T] 1 = target token, 0 = pad
    BatchField("targets"),  # [B, T]
    BatchField("weights", "float32", fill="weights"),  # [B, T]
)


def loss(logits, batch: dict, z_loss: float = 0.0) -> LossTerms:
    """Target-token cross entropy summed over weighted positions, and token accuracy."""
    total, weight = token_losses(logits, batch["targets"], batch["weights"], z_loss)
    return LossTerms(total, weight,
                     {"accuracy": token_accuracy(logits, batch["targets"], batch["weights"])})


def load_data(config, **kwargs):
    from scaling.data.api import load_seq2seq_data  # lazy: tfds/grain only when data is built

    return load_seq2seq_data(config, **kwargs)


OBJECTIVE = Objective("seq2seq", FIELDS, loss, load_data, metrics=("accuracy",),
                      description="source -> target records (parallel text)")
