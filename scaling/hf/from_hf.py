"""`scaling convert --from-hf DIR --workdir RUN [--config PRESET] [--set K=V]`: a HuggingFace
checkpoint becomes an ordinary run directory (config.json, the tokenizer, an orbax checkpoint
at step 0 holding the parameters) that `generate`, `eval` and `train --init_from` read.

Everything that can be checked is checked before RUN is touched: config.json, the
architecture, the shape against --config, every weights file's header and dtypes, and every
tensor against our parameter shapes (a dry run of the mapping). The parameters are then
streamed tensor by tensor into their sharded layout on this host's mesh, each shard read from
the memory-mapped files by `jax.make_array_from_callback`, so no second full copy is held.
The run is assembled in `RUN/.convert-tmp-*` under the run-directory lock and moved into
place when complete; a failure leaves RUN as it was (or absent).
"""

from __future__ import annotations

import dataclasses
import os
import shutil

from scaling.config import Config, apply_overrides
from scaling.errors import UserError
from scaling.hf.mapping import Architecture
from scaling.hf.model_files import HFTensors, read_hf_config

BASE_PRESETS = {"gpt2": "gpt2-small", "openai-gpt": "gpt1", "gpt_neo": "gpt2-small",
                "bert": "bert-base"}  # model_type -> the preset whose optim/train/data settings
SHAPE_FIELDS = ("family", "vocab_size", "n_layers", "d_model", "n_heads", "d_ff", "max_len",
                "type_vocab_size")
TMP_PREFIX = ".convert-tmp-"


def find_architecture(hf: dict, directory: str) -> Architecture:
    from scaling.hf.converters import architectures

    names = hf.get("architectures") or []
    table = architectures()
    if not names:
        raise UserError(f"{directory}/config.json names no architectures; supported: "
                        f"{', '.join(table)}")
    if names[0] not in table:
        raise UserError(f"{directory}: architecture {names[0]} is not supported; supported: "
                        f"{', '.join(table)}")
    return table[names[0]]


def run_config(arch: Architecture, hf: dict, preset: str | None, overrides: list[str],
               tokenizer_spec: str) -> Config:
    """The new run's Config: the preset's (or the architecture's base preset's) settings with
    the checkpoint's model; with --config, the shapes must agree."""
    from scaling.presets import get_preset
    from scaling.validate import validate

    fields = arch.model_fields(hf)
    base = get_preset(preset or BASE_PRESETS[arch.model_type])
    if preset:
        bad = [f"model.{k}: {preset} has {getattr(base.model, k)}, the checkpoint {fields[k]}"
               for k in SHAPE_FIELDS if k in fields and getattr(base.model, k) != fields[k]]
        if bad:
            raise UserError(f"--config {preset} does not match the checkpoint's shape "
                            f"({'; '.join(bad)}); omit --config to take the checkpoint's")
    model = dataclasses.replace(base.model, **fields)
    train = base.train
    if train.seq_len > model.max_len:
        train = dataclasses.replace(train, seq_len=0)
    data = dataclasses.replace(base.data, tokenizer=tokenizer_spec)
    config = dataclasses.replace(base, model=model, train=train, data=data)
    return validate(apply_overrides(config, overrides))


EMBEDDINGS = ("wte.weight", "tokens_embed.weight", "embeddings.word_embeddings.weight")


def _check_vocab(config: Config, tensors: HFTensors) -> None:
    """config.json's vocab_size is the token embedding's rows (a larger one would be padded
    with zero rows the model never learned)."""
    for name in EMBEDDINGS:
        if tensors.has(name):
            rows = tensors.shape(name)[0]
            if rows != config.model.vocab_size:
                raise UserError(f"{tensors.directory}: config.json says vocab_size="
                                f"{config.model.vocab_size}, the token embedding {name} has "
                                f"{rows} rows; they must agree")
            return


def _remove_stale(workdir: str) -> None:
    """Under the run lock no other convert is writing here: a `.convert-tmp-PID` left is a
    killed one's, removed."""
    for name in os.listdir(workdir):
        if name.startswith(TMP_PREFIX) and name != f"{TMP_PREFIX}{os.getpid()}":
            shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)


def _check_workdir(workdir: str) -> None:
    if os.path.exists(workdir):
        if not os.path.isdir(workdir):
            raise UserError(f"--workdir {workdir} is a file; give a new directory")
        if any(n != ".lock" and not n.startswith(TMP_PREFIX) for n in os.listdir(workdir)):
            raise UserError(f"--workdir {workdir} is not empty; converting writes a new run "
                            f"directory, give one that does not exist yet")


def import_command(hf_dir: str, workdir: str, preset: str | None, overrides: list[str]) -> int:
    """Check everything, then write the run; prints one summary line."""
    from scaling.data.tokenizers.hf import HFTokenizer, has_hf_tokenizer
    from scaling.data.tokenizers.run_copy import HF_DIR

    hf_dir, workdir = os.path.abspath(hf_dir), os.path.abspath(workdir)
    hf = read_hf_config(hf_dir)
    arch = find_architecture(hf, hf_dir)
    tokenizer = HFTokenizer(hf_dir) if has_hf_tokenizer(hf_dir) else None
    spec = "hf:" + os.path.join(workdir, HF_DIR) if tokenizer else "byte"
    # the model's convention: what its tokenizer puts first (eval/encoding.py)
    bos = tokenizer.adds_bos() if tokenizer else arch.model_type == "bert"
    config = run_config(arch, hf, preset, [f"data.bos_prefix={str(bos).lower()}", *overrides],
                        spec)
    if tokenizer is None:
        from scaling.data.tokenizers import ByteTokenizer

        tokenizer = ByteTokenizer()
        print(f"note: {hf_dir} has no tokenizer.json; the run uses the byte tokenizer, which "
              f"is not the model's vocabulary (copy the model's tokenizer files next to its "
              f"config.json to keep it)")
    if tokenizer.vocab_size > config.model.vocab_size:
        raise UserError(f"the tokenizer has {tokenizer.vocab_size} tokens, the model "
                        f"{config.model.vocab_size}; they do not belong together")
    tensors = HFTensors(hf_dir)
    _check_vocab(config, tensors)
    _check_workdir(workdir)
    from scaling.hf.stream import build_state, plan  # JAX from here on

    mesh, targets, rules = plan(config, arch, tensors)
    from scaling.lock import RunLock

    created = not os.path.exists(workdir)
    lock = RunLock(workdir, "convert").acquire()  # a live convert: one line naming it
    tmp = os.path.join(workdir, f"{TMP_PREFIX}{os.getpid()}")
    try:
        _remove_stale(workdir)
        state = build_state(targets, rules, tensors)
        _write_run(tmp, config, state, mesh, tokenizer, arch, hf_dir)
        for name in (HF_DIR, "checkpoints", "config.json"):  # config.json last: complete
            if os.path.exists(os.path.join(tmp, name)):
                os.rename(os.path.join(tmp, name), os.path.join(workdir, name))
        os.rmdir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        lock.release()
        if created:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    lock.release()
    from scaling.families import param_counts

    print(f"converted {arch.name} from {hf_dir} ({param_counts(config.model)['total']:,} "
          f"parameters) into run directory {workdir} (step 0)")
    return 0


def _write_run(tmp: str, config: Config, state, mesh, tokenizer, arch: Architecture,
               hf_dir: str) -> None:
    from scaling.checkpoint.compat import run_metadata
    from scaling.checkpoint.manager import Checkpoints
    from scaling.data.tokenizers.run_copy import HF_DIR
    from scaling.train.report import write_json

    os.makedirs(tmp)
    if tokenizer.kind == "hf":
        tokenizer.save_copy(os.path.join(tmp, HF_DIR))
    source = {"directory": hf_dir, "architecture": arch.name}
    meta = {**run_metadata(mesh, tokenizer), "converted_from": source}
    ckpt = Checkpoints(os.path.join(tmp, "checkpoints"), config.train)
    try:
        ckpt.save(0, state, data={"converted_from": source}, config=config.to_dict(), meta=meta)
    finally:
        ckpt.close()
    write_json(os.path.join(tmp, "config.json"), config.to_dict())
