"""AdamW with a warmup schedule (scaling/schedules.py), global-norm clipping and masked weight
decay."""

from __future__ import annotations

import jax
import optax

from scaling.config import OptimConfig
from scaling.schedules import schedule


def decay_mask(params):
    """Weight decay applies to matmul kernels only: not biases, norms or embeddings."""
    def is_kernel(path, _):
        return getattr(path[-1], "key", None) == "kernel"

    return jax.tree_util.tree_map_with_path(is_kernel, params)


def make_optimizer(optim: OptimConfig, total_steps: int) -> optax.GradientTransformation:
    """Clip by global norm, then AdamW (Loshchilov & Hutter 2019) on the warmup-cosine schedule."""
    parts = [optax.clip_by_global_norm(optim.clip_norm)] if optim.clip_norm > 0 else []
    parts.append(optax.adamw(
        schedule(optim, total_steps), b1=optim.b1, b2=optim.b2, eps=optim.eps,
        weight_decay=optim.weight_decay, mask=decay_mask))
    return optax.chain(*parts)


def hidden_lr(lr: float, width_mult: float) -> float:
    """The peak rate of hidden weight matrices: lr / width_mult = lr * mup_base_width / d_model
    under μP (Yang et al. 2022, Table 3, Adam), lr under the standard parameterization."""
    return lr / width_mult


def mup_scale_updates(updates, width_mult: float):
    """μP for Adam (Yang et al. 2022, Table 3): hidden weights learn at lr / width_mult.

    Embeddings, biases, norms and the (multiplier-scaled) output head keep the base rate. The
    scaling applies after Adam's normalization, where a gradient rescale would cancel out.
    """
    if width_mult == 1.0:
        return updates

    def scale(path, u):
        keys = [getattr(p, "key", None) for p in path]
        hidden = keys[-1] == "kernel" and "lm_head" not in keys
        return u / width_mult if hidden else u

    return jax.tree_util.tree_map_with_path(scale, updates)
