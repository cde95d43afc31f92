"""Autoregressive decoding of a causal decoder with its key/value cache (the gpt family's
decoder hook, scaling/families/gpt.py).

Letter legend: B batch, P prompt length, V vocab, K new tokens.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models.gpt import GPT


def decoder(model: ModelConfig) -> GPT:
    """The GPT module in decode mode: a key/value cache of max_len slots in every layer."""
    return GPT(model, decode=True)


def init_cache(model: ModelConfig, batch: int) -> dict:
    """An empty decode cache (zeros, index 0) for `batch` rows; no parameters are built."""
    dec = decoder(model)
    shapes = jax.eval_shape(
        lambda: dec.init(jax.random.key(0), jnp.zeros((batch, 1), jnp.int32)))
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), nn.unbox(shapes["cache"]))


def sample(logits: jax.Array, key: jax.Array, temperature: float, top_k: int) -> jax.Array:
    """One token per row from logits [B, V]: greedy at temperature 0, else softmax(logits/T)
    restricted to the top_k most likely tokens (all when top_k is 0)."""
    if temperature == 0.0:
        return jnp.argmax(logits, axis=-1)  # [B]
    logits = logits / temperature
    top_k = min(top_k, logits.shape[-1])
    if top_k:
        kth = jnp.sort(logits, axis=-1)[:, -top_k][:, None]  # [B, 1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1)  # [B]


@functools.partial(jax.jit, static_argnames=("model", "new_tokens", "temperature", "top_k"))
def generate(model: ModelConfig, params, prompt: jax.Array, key: jax.Array, *,
             new_tokens: int, temperature: float = 1.0, top_k: int = 0) -> jax.Array:
    """Continue every row of `prompt` [B, P] by `new_tokens` tokens: returns [B, K].

    The prompt fills the cache in one pass (prefill); each new token then costs one
    single-position pass over the cache. Token k is drawn with key fold_in(key, k).
    """
    dec = decoder(model)
    cache = init_cache(model, prompt.shape[0])
    logits, state = dec.apply({"params": params, "cache": cache}, prompt, mutable=["cache"])
    first = sample(logits[:, -1], jax.random.fold_in(key, 0), temperature, top_k)  # [B]

    def step(carry, k):
        cache, token = carry
        logits, state = dec.apply({"params": params, "cache": cache}, token[:, None],
                                  mutable=["cache"])  # [B, 1, V]
        nxt = sample(logits[:, -1], jax.random.fold_in(key, k), temperature, top_k)
        return (state["cache"], nxt), token

    (_, last), tokens = jax.lax.scan(step, (state["cache"], first), jnp.arange(1, new_tokens))
    return jnp.concatenate([tokens.T, last[:, None]], axis=1)  # [B, K]
