"""Token losses shared by every family: weighted cross entropy with an optional z-loss.

Letter legend: B batch, T length, V vocab.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def token_losses(logits: jax.Array, targets: jax.Array, weights: jax.Array,
                 z_loss: float = 0.0) -> tuple[jax.Array, jax.Array]:
    """(Σ w·(−log p(target) + z·log²Z), Σ w) for float32 logits [B, T, V] and targets [B, T].

    The z-loss (PaLM, Chowdhery et al. 2022 §5: z = 1e-4) pulls the softmax normalizer
    log Z toward 0, which keeps bfloat16 logits from drifting and stabilizes long runs.
    """
    log_z = jax.nn.logsumexp(logits, axis=-1)  # [B, T]
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]  # [B, T]
    per_token = log_z - target_logit  # [B, T] cross entropy
    if z_loss:
        per_token = per_token + z_loss * jnp.square(log_z)
    return jnp.sum(per_token * weights), jnp.sum(weights)


def token_accuracy(logits: jax.Array, targets: jax.Array,
                   weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(Σ w·[target has the largest logit], Σ w): weighted top-1 accuracy as a sum and a count,
    so that microbatches and devices add up before one division."""
    # target logit == the maximum: one max-reduction (shared with the loss's logsumexp after
    # CSE) instead of an arg-max pass; a target tied for the maximum counts as a hit
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]  # [B, T]
    hit = (target_logit >= jnp.max(logits, axis=-1)).astype(jnp.float32)  # [B, T]
    return jnp.sum(hit * weights), jnp.sum(weights)


def smoothed_token_losses(logits: jax.Array, targets: jax.Array, weights: jax.Array,
                          label_smoothing: float, vocab_size: int, z_loss: float = 0.0):
    """(Σ w·smoothed loss, Σ w·(−log p(target)), Σ w) with label smoothing ε (Szegedy et al.
    2016; Vaswani et al. 2017 §5.4, ε = 0.1): the cross entropy against
    (1 − ε)·onehot(target) + ε/V over the V = `vocab_size` real tokens (padded rows of the
    table excluded), i.e. (1 − ε)·CE + ε·(log Z − mean of the real logits)."""
    log_z = jax.nn.logsumexp(logits, axis=-1)  # [B, T]
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]  # [B, T]
    nll = log_z - target_logit  # [B, T]
    uniform = log_z - jnp.mean(logits[..., :vocab_size], axis=-1)  # [B, T] CE vs uniform
    per_token = (1.0 - label_smoothing) * nll + label_smoothing * uniform
    if z_loss:
        per_token = per_token + z_loss * jnp.square(log_z)
    return jnp.sum(per_token * weights), jnp.sum(nll * weights), jnp.sum(weights)
