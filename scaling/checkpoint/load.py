"""A trained run read back for inference, the one way every inference command loads a run
(`scaling generate`, `eval`, `translate`, `convert --to-hf`): its config, a mesh for this
host, its parameters restored sharded as in training (not copied to one device), its
tokenizer. Training's own resume goes through the manager (scaling/train/run.py).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import jax

from scaling import sharding, storage
from scaling.config import Config, ConfigError, MeshConfig, from_dict
from scaling.errors import UserError
from scaling.platform import resolve
from scaling.validate import validate

if TYPE_CHECKING:
    from scaling.data.tokenizers import Tokenizer


@dataclasses.dataclass(frozen=True)
class LoadedRun:
    """What an inference command needs of a run directory."""

    workdir: str
    config: Config  # the run's, on `mesh`, resolved for its platform (scaling/platform.py)
    saved_config: Config  # as its config.json holds it (`auto` kept): what an export writes
    mesh: jax.sharding.Mesh
    params: dict  # laid out on `mesh` as in training
    shardings: dict  # the parameters' shardings (a tree like `params`)
    step: int  # the step restored
    directory: str  # the checkpoint directory it was restored from
    meta: dict  # the checkpoint's metadata item (versions, mesh, tokenizer hash) and `step`
    tokenizer: Tokenizer | None  # the run's own (asked with tokenizer=True), else None


def load_run(workdir: str, *, check: Callable[[Config, str], None] | None = None,
             step: int | None = None, one_device: bool = False, prefer: str | None = None,
             tokenizer: bool = False) -> LoadedRun:
    """Read run directory `workdir` back for inference: its config.json (validated), then
    `check(config, workdir)` (what the command refuses, e.g. a family without a decoder)
    before any device work, then the parameters of `step` (default: the latest committed)
    restored on the run's own mesh when it fits this host (else every device on fsdp, else
    one device; one device with `one_device`). `prefer` names a checkpoint directory inside
    the run tried before its checkpoints/ (fine-tuning: its best checkpoint). With
    `tokenizer`, the run's own tokenizer, checked against the hash stored with the
    checkpoint.

    Every failure is a one-line UserError: not a run directory, a damaged config, no
    committed checkpoint, a step it does not have, parameters that do not fit the model."""
    saved = read_config(workdir)
    if check is not None:
        check(saved, workdir)
    config, mesh = inference_mesh(saved, one_device)
    params, shardings, step, directory, meta = _restore(workdir, config, mesh, step, prefer)
    run = LoadedRun(workdir, config, saved, mesh, params, shardings, step, directory, meta,
                    None)
    if tokenizer:
        run = dataclasses.replace(run, tokenizer=kept_tokenizer(run))
    return run


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


def inference_mesh(config: Config, one_device: bool = False):
    """The run's own mesh when it fits this host's devices, else every device on fsdp, else
    one device (only that with `one_device`); returns (config with that mesh, resolved for
    the platform; mesh)."""
    n = jax.device_count()
    candidates = ((config.mesh, None), (MeshConfig(1, -1, 1), None),
                  (MeshConfig(1, 1, 1), jax.devices()[:1]))
    for mesh_cfg, devices in candidates[2:] if one_device else candidates:
        candidate = dataclasses.replace(config, mesh=mesh_cfg)
        try:
            mesh = sharding.make_mesh(mesh_cfg, devices, config=candidate)
        except ConfigError:
            continue
        return resolve(candidate, mesh.devices.flat), mesh
    raise UserError(f"no mesh of the {n} devices fits {config.name}")  # 1 device always fits


def param_targets(config: Config, mesh):
    """(targets, shardings): ShapeDtypeStructs of the run's parameters carrying their
    shardings on `mesh`, from `jax.eval_shape` of the init (nothing allocated)."""
    from flax import linen as nn

    from scaling.params import init_params

    with sharding.axis_rules():
        boxed = jax.eval_shape(lambda r: init_params(config, r), jax.random.key(0))
    shardings = sharding.logical_shardings(boxed, mesh)
    targets = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                           nn.unbox(boxed), shardings)
    return targets, shardings


def _restore(workdir: str, config: Config, mesh, step: int | None, prefer: str | None):
    """(params, shardings, step, directory, meta with its step) of `step` (default: the
    latest committed) of `prefer`'s checkpoints when it has any, else the run's own."""
    from scaling.checkpoint.manager import Checkpoints, checkpoint_dir
    from scaling.checkpoint.noise import absl_warnings_held

    directories = [checkpoint_dir(workdir)]
    if prefer is not None:
        preferred = storage.join(storage.absolute(workdir), prefer)
        directories[:0] = [preferred] if storage.path(preferred).is_dir() else []
    with absl_warnings_held():  # orbax notes read-only mode, and the items left unread
        for directory in directories:
            ckpt = Checkpoints(directory, read_only=True)
            try:
                steps = ckpt.all_steps()
                if not steps:
                    continue
                if step is not None and step not in steps:
                    raise UserError(f"--step {step}: {workdir} has checkpoints at steps "
                                    f"{', '.join(map(str, steps))}")
                chosen = steps[-1] if step is None else step
                targets, shardings = param_targets(config, mesh)
                params = ckpt.restore_params(chosen, targets)
                meta = {**ckpt.read_json(chosen, "meta"), "step": chosen}
                return params, shardings, chosen, directory, meta
            finally:
                ckpt.manager.close()
    raise UserError(f"{workdir} has no committed checkpoint yet")


def kept_tokenizer(run: LoadedRun):
    """The run's own tokenizer (the copy its directory keeps, else the one its data config
    builds), checked against the hash stored with the checkpoint."""
    from scaling.data.tokenizers.run_copy import run_tokenizer

    return _checked(run_tokenizer(run.workdir, run.config), run)


def run_corpus(run: LoadedRun, fields: tuple[str, ...] = ()):
    """(corpus, tokenizer) its data config builds (a translation run's test split, its
    vocabulary), the tokenizer checked against the hash stored with the checkpoint."""
    from scaling.data.api import open_corpus

    corpus, tokenizer, _ = open_corpus(run.config, fields)
    return corpus, _checked(tokenizer, run)


def _checked(tokenizer, run: LoadedRun):
    from scaling.checkpoint.compat import check_tokenizer

    check_tokenizer(run.meta, {"tokenizer": {"hash": tokenizer.hash,
                                             "vocab_size": tokenizer.vocab_size}})
    tokenizer.add_bos = run.config.data.bos_prefix  # the run's convention (eval/encoding.py)
    return tokenizer


def is_finetuned(config: Config) -> bool:
    """Whether the run trained a task head (its objective is its family's fine-tuning one)."""
    from scaling.families import family_of

    return bool(family_of(config.model).finetune) and (
        config.train.objective == family_of(config.model).finetune
    )


def refuse_finetuned(config: Config, workdir: str, what: str) -> None:
    """One line for commands that need the language-model head a fine-tuned run lacks."""
    if is_finetuned(config):
        raise UserError(
            f"{workdir} is a fine-tuned {config.finetune.task_type or 'task'} run "
            f"(a task head, no language-model output); {what} needs a pretrained "
            f"or converted run: use its --init_from backbone, or `scaling eval "
            f"--tasks finetune` for this one"
        )
