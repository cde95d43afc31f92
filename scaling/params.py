"""Parameter counts read off the model itself with `jax.eval_shape` (nothing is allocated)."""

from __future__ import annotations

import math

import jax
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models import family

EMBEDDING_TABLES = ("token_embed", "pos_embed", "type_embed")


def abstract_params(model: ModelConfig) -> dict:
    """ShapeDtypeStructs of the parameters of `model`."""
    fam = family(model)
    batch = fam.dummy_batch(model, 1, 8)
    shapes = jax.eval_shape(
        lambda r: fam.make_model(model).init(r, *fam.init_args(batch)), jax.random.key(0))
    return nn.unbox(shapes)["params"]


def count_params(model: ModelConfig) -> dict:
    """Total parameters and non-embedding parameters (Kaplan et al. 2020 §2.1: N excludes the
    token, position and segment tables; a tied LM head adds nothing)."""
    total = embedding = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(abstract_params(model)):
        n = math.prod(leaf.shape)
        total += n
        if any(getattr(p, "key", None) in EMBEDDING_TABLES for p in path):
            embedding += n
    return {"total": total, "non_embedding": total - embedding, "embedding": embedding}
