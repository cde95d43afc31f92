"""A run's parameters as its model initializes them, and their counts read off the model
itself with `jax.eval_shape` (nothing is allocated)."""

from __future__ import annotations

import math

import jax
from flax import linen as nn

from scaling.config import Config
from scaling.families import batch_fields, build_model, family_of
from scaling.families.schema import dummy_batch

EMBEDDING_TABLES = ("token_embed", "pos_embed", "type_embed")


def init_params(config: Config, rng: jax.Array) -> dict:
    """The parameters a run trains (on a fine-tuning run its task model's: {backbone, head})
    as `init` makes them, logical-partitioning boxes still on the leaves."""
    family = family_of(config.model)
    length = min(config.seq_len, 8 * max(1, config.finetune.num_choices))  # >= 1 per choice
    batch = dummy_batch(batch_fields(config), 1, length)
    return build_model(config, "eval").init(rng, *family.model_args(batch))["params"]


def abstract_params(config: Config) -> dict:
    """ShapeDtypeStructs of the parameters of `config`'s model (a run Config, or a
    ModelConfig, whose family's default objective then gives the init batch)."""
    if not isinstance(config, Config):
        config = Config(model=config)
    family = family_of(config.model)
    batch = dummy_batch(batch_fields(config), 1, 8)
    shapes = jax.eval_shape(
        lambda r: family.make_model(config.model, "eval").init(r, *family.model_args(batch)),
        jax.random.key(0))
    return nn.unbox(shapes)["params"]


def count_params(config) -> dict:
    """Total parameters and non-embedding parameters (Kaplan et al. 2020 §2.1: N excludes the
    token, position and segment tables; a tied LM head adds nothing)."""
    total = embedding = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(abstract_params(config)):
        n = math.prod(leaf.shape)
        total += n
        if any(getattr(p, "key", None) in EMBEDDING_TABLES for p in path):
            embedding += n
    return {"total": total, "non_embedding": total - embedding, "embedding": embedding}
