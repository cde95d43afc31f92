"""Sequence to sequence (Vaswani et al. 2017): predict the target given the source."""

from __future__ import annotations

from scaling.families.registry import BatchField, LossTerms, Objective

FIELDS = (
    BatchField("inputs"),  # [B, S] source ids
    BatchField("input_positions", fill="positions"),  # [B, S]
    BatchField("input_segment_ids", fill="segments"),  # [B, S] 1 = source token, 0 = pad
    BatchField("decoder_inputs"),  # [B, T] target shifted right (starts with bos)
    BatchField("positions", fill="positions"),  # [B, T]
    BatchField("segment_ids", fill="segments"),  # [B, T] 1 = target token, 0 = pad
    BatchField("targets", fill="next", source="decoder_inputs"),  # [B, T]
    BatchField("weights", "float32", fill="weights"),  # [B, T]
)


def loss(logits, batch: dict, config=None) -> LossTerms:
    """Target-token cross entropy summed over weighted positions, label-smoothed by
    optim.label_smoothing (Vaswani et al. §5.4); `nll` is the unsmoothed loss (perplexity =
    exp(nll)) and `accuracy` the token accuracy."""
    from scaling.models.losses import (  # lazy: the registry imports no JAX
        smoothed_token_losses,
        token_accuracy,
    )

    eps = config.optim.label_smoothing if config is not None else 0.0
    z_loss = config.optim.z_loss if config is not None else 0.0
    vocab = config.model.vocab_size if config is not None else logits.shape[-1]
    targets, weights = batch["targets"], batch["weights"]
    total, nll, weight = smoothed_token_losses(logits, targets, weights, eps, vocab, z_loss)
    return LossTerms(total, weight, {"nll": (nll, weight),
                                     "accuracy": token_accuracy(logits, targets, weights)})


def load_data(config, **kwargs):
    from scaling.data.api import load_seq2seq_data  # lazy: tfds/grain only when data is built

    return load_seq2seq_data(config, **kwargs)


OBJECTIVE = Objective("seq2seq", FIELDS, loss, load_data, metrics=("nll", "accuracy"),
                      description="source -> target records (parallel text)")
