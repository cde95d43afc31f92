"""Autoregressive generation with the key/value cache, and `scaling generate`.

Letter legend: B batch, P prompt length, V vocab, K new tokens.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from scaling.config import Config, ModelConfig, from_dict
from scaling.errors import UserError
from scaling.models import gpt


def init_cache(model: ModelConfig, batch: int) -> dict:
    """An empty decode cache (zeros, index 0) for `batch` rows; no parameters are built."""
    dec = gpt.make_model(model, decode=True)
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
    dec = gpt.make_model(model, decode=True)
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


def load_run(workdir: str) -> tuple[Config, dict, dict]:
    """(config, parameters, metadata) of the latest committed checkpoint of a run
    directory, the parameters restored onto one device."""
    from scaling import sharding
    from scaling.checkpoint import Checkpoints, checkpoint_dir
    from scaling.config import MeshConfig
    from scaling.train.optimizer import make_optimizer
    from scaling.train.state import sharded_abstract_state

    path = os.path.join(workdir, "config.json")
    if not os.path.isfile(path):
        raise UserError(f"{workdir} is not a run directory: no config.json (train one with "
                        f"`scaling train --workdir {workdir}`)")
    with open(path, encoding="utf-8") as f:
        config = from_dict(json.load(f))
    if config.model.family != "gpt":
        raise UserError(f"generation needs a gpt-family run; {workdir} is "
                        f"{config.model.family!r}")
    logging.getLogger("absl").setLevel(logging.ERROR)  # orbax notes read-only mode as a warning
    ckpt = Checkpoints(checkpoint_dir(workdir), read_only=True)
    step = ckpt.latest_step()
    if step is None:
        raise UserError(f"{workdir} has no committed checkpoint yet")
    one = dataclasses.replace(config, mesh=MeshConfig(1, 1, 1))
    mesh = sharding.make_mesh(one.mesh, jax.devices()[:1])
    tx = make_optimizer(one.optim, one.train.steps)
    target, _ = sharded_abstract_state(one, tx, mesh)
    params = ckpt.restore_params(step, target.params)
    meta = {**ckpt.read_json(step, "meta"), "step": step}
    ckpt.manager.close()
    return config, params, meta


def generate_text(workdir: str, prompt: str, new_tokens: int, temperature: float,
                  top_k: int, seed: int) -> str:
    """The run's continuation of `prompt`, cut at the first end-of-document token."""
    from scaling.data.api import open_corpus

    if new_tokens < 1 or temperature < 0 or top_k < 0:
        raise UserError("--max-new-tokens must be >= 1, --temperature and --top-k >= 0")
    from scaling.checkpoint import check_tokenizer

    config, params, meta = load_run(workdir)
    _, tokenizer, _ = open_corpus(config)
    check_tokenizer(meta, {"tokenizer": {"hash": tokenizer.hash,
                                         "vocab_size": tokenizer.vocab_size}})
    ids = [tokenizer.bos_id, *tokenizer.encode(prompt)]
    if len(ids) + new_tokens > config.model.max_len:
        raise UserError(f"prompt ({len(ids)} tokens) + {new_tokens} new tokens exceed the "
                        f"model's {config.model.max_len} positions; shorten one of them")
    out = generate(config.model, params, jnp.asarray([ids], jnp.int32), jax.random.key(seed),
                   new_tokens=new_tokens, temperature=float(temperature), top_k=int(top_k))
    new = [int(t) for t in np.asarray(out)[0]]
    if tokenizer.eos_id in new:
        new = new[:new.index(tokenizer.eos_id)]
    return tokenizer.decode(new)
