"""Autoregressive generation with the key/value cache, and `scaling generate`.

Letter legend: B batch, P prompt length, V vocab, K new tokens.
"""

from __future__ import annotations

import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np

from scaling.config import Config
from scaling.errors import UserError
from scaling.families import family_of
from scaling.models.decoding import generate, init_cache, sample  # noqa: F401
from scaling.platform import resolve


def load_run(workdir: str) -> tuple[Config, dict, dict]:
    """(config, parameters, metadata) of the latest committed checkpoint of a run
    directory, the parameters restored onto one device; the config comes back resolved for
    that device's platform (scaling/platform.py)."""
    from scaling import sharding
    from scaling.checkpoint import Checkpoints, checkpoint_dir
    from scaling.config import MeshConfig
    from scaling.eval.checkpoint_io import read_config
    from scaling.train.optimizer import make_optimizer
    from scaling.train.state import sharded_abstract_state

    config = read_config(workdir)
    family = family_of(config.model)
    if family.decoder is None:
        raise UserError(f"{workdir} is a {family.name}-family run, which has no autoregressive "
                        f"decoder; generation and scoring need a family that has one (gpt)")
    logging.getLogger("absl").setLevel(logging.ERROR)  # orbax notes read-only mode as a warning
    ckpt = Checkpoints(checkpoint_dir(workdir), read_only=True)
    step = ckpt.latest_step()
    if step is None:
        raise UserError(f"{workdir} has no committed checkpoint yet")
    devices = jax.devices()[:1]
    config = resolve(config, devices)  # `auto` dtype/attention for the device it runs on
    one = dataclasses.replace(config, mesh=MeshConfig(1, 1, 1))
    mesh = sharding.make_mesh(one.mesh, devices)
    tx = make_optimizer(one.optim, one.train.steps)
    target, _ = sharded_abstract_state(one, tx, mesh)
    params = ckpt.restore_params(step, target.params)
    meta = {**ckpt.read_json(step, "meta"), "step": step}
    ckpt.manager.close()
    return config, params, meta


def generate_text(workdir: str, prompt: str, new_tokens: int, temperature: float,
                  top_k: int, seed: int) -> str:
    """The run's continuation of `prompt`, cut at the first end-of-document token."""
    from scaling.data.run_tokenizer import run_tokenizer

    if new_tokens < 1 or temperature < 0 or top_k < 0:
        raise UserError("--max-new-tokens must be >= 1, --temperature and --top-k >= 0")
    from scaling.checkpoint import check_tokenizer

    config, params, meta = load_run(workdir)
    tokenizer = run_tokenizer(workdir, config)  # the run's kept copy when it has one
    check_tokenizer(meta, {"tokenizer": {"hash": tokenizer.hash,
                                         "vocab_size": tokenizer.vocab_size}})
    ids = [tokenizer.bos_id, *tokenizer.encode(prompt)]
    if len(ids) + new_tokens > config.model.max_len:
        raise UserError(f"prompt ({len(ids)} tokens) + {new_tokens} new tokens exceed the "
                        f"model's {config.model.max_len} positions; shorten one of them")
    decoder = family_of(config.model).decoder
    out = decoder(config.model, params, jnp.asarray([ids], jnp.int32), jax.random.key(seed),
                  new_tokens=new_tokens, temperature=float(temperature), top_k=int(top_k))
    new = [int(t) for t in np.asarray(out)[0]]
    if tokenizer.eos_id in new:
        new = new[:new.index(tokenizer.eos_id)]
    return tokenizer.decode(new)
