"""`scaling convert --workdir RUN --to-hf DIR [--step N]`: a run's parameters as a
HuggingFace model directory (safetensors, config.json and generation_config.json with the
run's bos/eos/pad ids, and the run's tokenizer as a tokenizer.json whatever its kind:
scaling/interop/hf_tokenizer.py) that `transformers` loads with `from_pretrained(DIR)`.

The architecture is the family's choice (`hf_converter().export_for`): GPT-2 for a pre-LN
GPT, GPT-1 for a post-LN one, GPT-Neo for banded layers, BertForPreTraining for BERT. DIR is
written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
import shutil

from scaling.errors import UserError


def _token_ids(tokenizer) -> dict:
    if tokenizer is None:
        return {}
    ids = {"bos_token_id": tokenizer.bos_id, "eos_token_id": tokenizer.eos_id,
           "pad_token_id": tokenizer.pad_id}
    return {k: v for k, v in ids.items() if v is not None}


def _run_tokenizer(workdir: str, config):
    """The run's tokenizer: its kept copy, else the byte tokenizer or an hf: directory its
    data.tokenizer names, else the one its data config builds."""
    from scaling.data.tokenizers import ByteTokenizer
    from scaling.data.tokenizers.hf import HFTokenizer
    from scaling.data.tokenizers.run_copy import kept_spec, run_tokenizer

    spec = kept_spec(workdir) or config.data.tokenizer
    if spec.startswith("hf:"):
        return HFTokenizer(spec[3:])
    if spec == "byte":
        return ByteTokenizer()
    return run_tokenizer(workdir, config)


def _write_json(path: str, table: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(table, f, indent=2)


def export_command(workdir: str, out_dir: str, step: int | None) -> int:
    from scaling.eval.checkpoint_io import read_config
    from scaling.families import family_of

    workdir, out_dir = os.path.abspath(workdir), os.path.abspath(out_dir)
    config = read_config(workdir)
    family = family_of(config.model)
    if family.hf_converter is None:
        raise UserError(f"{workdir} is a {family.name}-family run; HuggingFace export exists "
                        f"for the families with an hf_converter (gpt, bert)")
    arch = family.hf_converter().export_for(config.model)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise UserError(f"--to-hf {out_dir} exists and is not empty; give a new directory")
    tokenizer = _run_tokenizer(workdir, config)
    params, step = _restore(workdir, config, step)
    from scaling.eval.checkpoint_io import is_finetuned
    from scaling.interop.hf_tokenizer import write_hf_tokenizer
    from scaling.interop.stream import Ours, write_safetensors
    from scaling.interop.task_export import task_export

    tmp = f"{out_dir}.tmp-{os.getpid()}"
    try:
        os.makedirs(tmp)
        tensors, extra, name, note = arch.export(config.model), {}, arch.name, None
        if is_finetuned(config):  # {"backbone", "head"}: the task head's HF class, if any
            tensors, extra, name, note = task_export(config, arch, params)
            params = params["backbone"]
        files = write_safetensors(tensors, Ours(params), tmp)
        ids = _token_ids(tokenizer)
        hf_config = {**arch.hf_config(config.model, ids), **extra}
        _write_json(os.path.join(tmp, "config.json"), hf_config)
        _write_json(os.path.join(tmp, "generation_config.json"), ids)
        write_hf_tokenizer(tokenizer, tmp, config.data.bos_prefix)
        if os.path.isdir(out_dir):
            os.rmdir(out_dir)  # empty, checked above
        os.rename(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if note:
        print(f"note: {note}")
    print(f"exported step {step} of {workdir} as {name} to {out_dir} "
          f"({', '.join(files)}; its {tokenizer.kind} tokenizer as tokenizer.json)")
    return 0


def _restore(workdir: str, config, step: int | None):
    """The parameters of `step` (default: the latest) on this host's mesh."""

    from scaling.checkpoint import Checkpoints, checkpoint_dir
    from scaling.checkpoint_noise import absl_warnings_held
    from scaling.interop.stream import param_targets

    with absl_warnings_held():  # orbax notes read-only mode as a warning
        ckpt = Checkpoints(checkpoint_dir(workdir), read_only=True)
        steps = ckpt.all_steps()
        if not steps:
            raise UserError(f"{workdir} has no committed checkpoint")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise UserError(f"--step {step}: {workdir} has checkpoints at steps "
                            f"{', '.join(map(str, steps))}")
        _, targets = param_targets(config)
        params = ckpt.restore_params(step, targets)
        ckpt.manager.close()
        return params, step
