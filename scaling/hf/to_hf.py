"""`scaling convert --workdir RUN --to-hf DIR [--step N]`: a run's parameters as a
HuggingFace model directory (safetensors, config.json and generation_config.json with the
run's bos/eos/pad ids, and the run's tokenizer as a tokenizer.json whatever its kind:
scaling/hf/tokenizer_json.py) that `transformers` loads with `from_pretrained(DIR)`.

The architecture is the family converter's choice (`export_for`, scaling/hf/converters.py):
GPT-2 for a pre-LN
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
    """`scaling convert --workdir RUN --to-hf DIR [--step N]` (see the module doc)."""
    from scaling.checkpoint.load import is_finetuned, load_run
    from scaling.hf.converters import converter_for
    from scaling.hf.stream import Ours, write_safetensors
    from scaling.hf.task_heads import task_export
    from scaling.hf.tokenizer_json import write_hf_tokenizer

    workdir, out_dir = os.path.abspath(workdir), os.path.abspath(out_dir)

    def exportable(config, workdir: str) -> None:  # load_run's `check`, before any restore
        if converter_for(config.model) is None:
            raise UserError(f"{workdir} is a {config.model.family}-family run; HuggingFace "
                            f"export exists for the families with a converter (gpt, bert)")
        converter_for(config.model).export_for(config.model)
        if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
            raise UserError(f"--to-hf {out_dir} exists and is not empty; give a new directory")

    run = load_run(workdir, check=exportable, step=step)
    config, params, step = run.saved_config, run.params, run.step  # the run's own settings
    arch = converter_for(config.model).export_for(config.model)
    tokenizer = _run_tokenizer(workdir, config)
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
