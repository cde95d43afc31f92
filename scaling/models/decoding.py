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


def nucleus(logits: jax.Array, top_p: float) -> jax.Array:
    """Top-p (Holtzman et al. 2020 §3.1): logits [B, V] with every token outside the smallest
    set of most likely tokens whose probability mass reaches `top_p` set to -inf."""
    probs = jax.nn.softmax(logits, axis=-1)  # [B, V]
    order = jnp.argsort(-probs, axis=-1)  # [B, V] most likely first
    ranked = jnp.take_along_axis(probs, order, axis=-1)  # [B, V]
    keep_ranked = jnp.cumsum(ranked, axis=-1) - ranked < top_p  # mass before it < p: needed
    keep = jnp.take_along_axis(keep_ranked, jnp.argsort(order, axis=-1), axis=-1)  # [B, V]
    return jnp.where(keep, logits, -jnp.inf)


def sample(logits: jax.Array, key: jax.Array, temperature: float, top_k: int,
           top_p: float = 1.0) -> jax.Array:
    """One token per row from logits [B, V]: greedy at temperature 0, else softmax(logits/T)
    restricted to the top_k most likely tokens (all when top_k is 0) and then to the nucleus
    of mass top_p (all when top_p is 1)."""
    if temperature == 0.0:
        return jnp.argmax(logits, axis=-1)  # [B]
    logits = logits / temperature
    top_k = min(top_k, logits.shape[-1])
    if top_k:
        kth = jnp.sort(logits, axis=-1)[:, -top_k][:, None]  # [B, 1]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p < 1.0:
        logits = nucleus(logits, top_p)
    return jax.random.categorical(key, logits, axis=-1)  # [B]


def prompt_layout(prompt: jax.Array, lengths: jax.Array | None):
    """positions and segment ids [B, P] of left-padded prompts: row b's `lengths[b]` tokens
    sit in its last slots at positions 0.., its padding (segment 0) before them."""
    B, P = prompt.shape
    pad = jnp.zeros((B,), jnp.int32) if lengths is None else P - lengths  # [B]
    slots = jnp.broadcast_to(jnp.arange(P), (B, P))  # [B, P]
    return jnp.maximum(slots - pad[:, None], 0), (slots >= pad[:, None]).astype(jnp.int32), pad


@functools.partial(jax.jit, static_argnames=("model", "new_tokens", "temperature", "top_k",
                                             "top_p"))
def generate(model: ModelConfig, params, prompt: jax.Array, key: jax.Array, *,
             new_tokens: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
             lengths: jax.Array | None = None) -> jax.Array:
    """Continue every row of `prompt` [B, P] by `new_tokens` tokens: returns [B, K].

    Prompts of different lengths come left-padded with their `lengths` [B]: each row keeps
    its own positions, and its padding slots are masked, so a row's tokens equal those of
    the row decoded alone. The prompt fills the cache in one pass (prefill); each new token
    then costs one single-position pass over the cache. Token k is drawn with key
    fold_in(key, k).
    """
    dec = decoder(model)
    cache = init_cache(model, prompt.shape[0])
    positions, segments, pad = prompt_layout(prompt, lengths)
    P = prompt.shape[1]
    logits, state = dec.apply({"params": params, "cache": cache}, prompt, positions, segments,
                              mutable=["cache"])  # [B, P, V]
    first = sample(logits[:, -1], jax.random.fold_in(key, 0), temperature, top_k, top_p)

    def step(carry, k):
        cache, token = carry
        pos = (P + k - 1 - pad)[:, None]  # [B, 1] the fed token's own position
        logits, state = dec.apply({"params": params, "cache": cache}, token[:, None], pos,
                                  mutable=["cache"])  # [B, 1, V]
        nxt = sample(logits[:, -1], jax.random.fold_in(key, k), temperature, top_k, top_p)
        return (state["cache"], nxt), token

    (_, last), tokens = jax.lax.scan(step, (state["cache"], first), jnp.arange(1, new_tokens))
    return jnp.concatenate([tokens.T, last[:, None]], axis=1)  # [B, K]
