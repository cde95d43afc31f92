"""Translating with the encoder-decoder: the source encoded once, the decoder stepped with
its caches (self-attention keys/values appended, cross-attention keys/values computed once
per source), greedy or beam search (scaling/models/search.py). The encdec family's
translator hook.

Letter legend: B sources, S source length, K beam, R = B·K rows, L output length, V vocab.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from scaling.config import ModelConfig
from scaling.models.encdec import EncDec
from scaling.models.search import beam_search, greedy


def reorder_cache(cache, rows: jax.Array):
    """Gather the cache rows [R] (beams follow their parents); scanned layer caches carry a
    leading [L] axis, the step index is shared by all rows."""
    def take(path, leaf):
        if leaf.ndim == 0:
            return leaf
        axis = 1 if any(getattr(p, "key", None) == "layers" for p in path) else 0
        return jnp.take(leaf, rows, axis=axis)

    return jax.tree_util.tree_map_with_path(take, cache)


def prime(model: ModelConfig, params, src: jax.Array, valid: jax.Array, bos: int) -> dict:
    """The decode cache after encoding `src` [R, S] (`valid` [R, S] marks real tokens):
    cross-attention keys/values of every decoder layer, the source mask, and an empty
    self-attention cache at step 0."""
    dec = EncDec(model, decode=True)
    positions = jnp.where(valid, jnp.arange(src.shape[1])[None, :], 0)  # [R, S]
    first = jnp.full((src.shape[0], 1), bos, jnp.int32)  # [R, 1]
    _, state = dec.apply({"params": params}, src, positions, valid.astype(jnp.int32), first,
                         mutable=["cache"])
    cache = state["cache"]
    return {**cache, "index": jnp.zeros_like(cache["index"])}  # step 0 is decoded again


def _step_fn(model: ModelConfig, params):
    dec = EncDec(model, decode=True)

    def step(tokens, cache):
        logits, state = dec.apply({"params": params, "cache": cache}, None, None, None,
                                  tokens[:, None], mutable=["cache"])  # [R, 1, V]
        logp = jax.nn.log_softmax(logits[:, -1].astype(jnp.float32), axis=-1)  # [R, V]
        return logp, state["cache"]

    return step


def translate_ids(model: ModelConfig, params, src: jax.Array, valid: jax.Array,
                  limits: jax.Array, *, beam: int, max_len: int, bos: int, eos: int,
                  alpha: float = 0.6) -> jax.Array:
    """Target ids [B, L] for source ids [B, S] (`ids eos`, padded; `valid` marks real
    tokens): greedy when beam is 1, beam search otherwise; row b stops after limits[b]
    tokens. Jit it with `model`, `beam`, `max_len`, `bos`, `eos`, `alpha` static."""
    B = src.shape[0]
    if beam == 1:
        cache = prime(model, params, src, valid, bos)
        return greedy(_step_fn(model, params), cache, batch=B, max_len=max_len, limits=limits,
                      bos=bos, eos=eos)
    rows = jnp.repeat(src, beam, axis=0)  # [R, S], row b·K + k
    cache = prime(model, params, rows, jnp.repeat(valid, beam, axis=0), bos)
    tokens, _ = beam_search(_step_fn(model, params), reorder_cache, cache, batch=B, beam=beam,
                            max_len=max_len, limits=limits, bos=bos, eos=eos, alpha=alpha)
    return tokens
