"""A trained run read back for inference: its config, a mesh for this host, its parameters
restored sharded as in training (not copied to one device), its tokenizer."""

from __future__ import annotations

import dataclasses
import json

import jax

from scaling import sharding, storage
from scaling.config import Config, ConfigError, MeshConfig, from_dict
from scaling.errors import UserError
from scaling.platform import resolve
from scaling.validate import validate


def read_config(workdir: str) -> Config:
    """The run's config.json, type-checked and validated, or a UserError saying what is wrong
    with it (not a run directory, unreadable, damaged)."""
    path = storage.join(workdir, "config.json")
    if not storage.path(path).is_file():
        raise UserError(f"{workdir} is not a run directory: no config.json (train one with "
                        f"`scaling train --workdir {workdir}`)")
    try:
        config = from_dict(json.loads(storage.read_text(path)), where=path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot read the run's config ({e})") from None
    try:
        return validate(config)
    except UserError as e:
        raise UserError(f"{path}: the run's config is invalid: {e}") from None


def inference_mesh(config: Config):
    """The run's own mesh when it fits this host's devices, else every device on fsdp, else
    one device; returns (config with that mesh, resolved for the platform; mesh)."""
    n = jax.device_count()
    for mesh_cfg, devices in ((config.mesh, None), (MeshConfig(1, -1, 1), None),
                              (MeshConfig(1, 1, 1), jax.devices()[:1])):
        candidate = dataclasses.replace(config, mesh=mesh_cfg)
        try:
            mesh = sharding.make_mesh(mesh_cfg, devices, config=candidate)
        except ConfigError:
            continue
        return resolve(candidate, mesh.devices.flat), mesh
    raise UserError(f"no mesh of the {n} devices fits {config.name}")  # 1 device always fits


def restore_sharded(workdir: str, config: Config, mesh):
    """(parameters laid out on `mesh` as in training, their shardings, checkpoint metadata
    with its step) of the latest committed checkpoint."""
    from scaling.checkpoint import Checkpoints, checkpoint_dir
    from scaling.checkpoint_noise import absl_warnings_held
    from scaling.train.optimizer import make_optimizer
    from scaling.train.state import sharded_abstract_state

    with absl_warnings_held():  # orbax notes read-only mode as a warning
        ckpt = Checkpoints(checkpoint_dir(workdir), read_only=True)
        step = ckpt.latest_step()
        if step is None:
            raise UserError(f"{workdir} has no committed checkpoint yet")
        tx = make_optimizer(config.optim, config.train.steps)
        target, shardings = sharded_abstract_state(config, tx, mesh)
        params = ckpt.restore_params(step, target.params)
        meta = {**ckpt.read_json(step, "meta"), "step": step}
        ckpt.manager.close()
        return params, shardings.params, meta


def run_tokenizer(config: Config, meta: dict, fields: tuple[str, ...] = ()):
    """The run's tokenizer (rebuilt from its data config), checked against the hash stored
    with the checkpoint; also the corpus."""
    from scaling.checkpoint import check_tokenizer
    from scaling.data.api import open_corpus

    corpus, tokenizer, _ = open_corpus(config, fields)
    check_tokenizer(meta, {"tokenizer": {"hash": tokenizer.hash,
                                         "vocab_size": tokenizer.vocab_size}})
    tokenizer.add_bos = config.data.bos_prefix  # the run's convention (eval/encoding.py)
    return corpus, tokenizer


def kept_tokenizer(workdir: str, config: Config, meta: dict):
    """The run's own tokenizer (the copy its directory keeps, else the one its data config
    builds), checked against the hash stored with the checkpoint."""
    from scaling.checkpoint import check_tokenizer
    from scaling.data.tokenizers.run_copy import run_tokenizer as kept

    tokenizer = kept(workdir, config)
    check_tokenizer(meta, {"tokenizer": {"hash": tokenizer.hash,
                                         "vocab_size": tokenizer.vocab_size}})
    tokenizer.add_bos = config.data.bos_prefix  # the run's convention (eval/encoding.py)
    return tokenizer


def is_finetuned(config) -> bool:
    """Whether the run trained a task head (its objective is its family's fine-tuning one)."""
    from scaling.families import family_of

    return bool(family_of(config.model).finetune) and (
        config.train.objective == family_of(config.model).finetune
    )


def refuse_finetuned(config, workdir: str, what: str) -> None:
    """One line for commands that need the language-model head a fine-tuned run lacks."""
    if is_finetuned(config):
        raise UserError(
            f"{workdir} is a fine-tuned {config.finetune.task_type or 'task'} run "
            f"(a task head, no language-model output); {what} needs a pretrained "
            f"or converted run: use its --init_from backbone, or `scaling eval "
            f"--tasks finetune` for this one"
        )
