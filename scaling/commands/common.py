"""What several commands share: the --config/--set pair, a config loaded and validated from
them with its paths made absolute, and the bound checks on numeric flags.

Nothing here imports JAX: a bad flag fails before the heavy imports.
"""

from __future__ import annotations

import argparse
import math

from scaling.errors import UserError


def config_args(p: argparse.ArgumentParser) -> None:
    """The --config PRESET / --set KEY=VALUE pair of the commands that build a config."""
    p.add_argument("--config", required=True, help="preset name, e.g. gpt-tiny, gpt2-small")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=100 (repeatable)")


def load_config(args):
    """The validated Config of --config, --set and (where the command has it) --data, its
    paths absolute."""
    from scaling.config import apply_overrides
    from scaling.presets import get_preset

    config = apply_overrides(get_preset(args.config), args.set)  # no JAX imported yet
    if getattr(args, "data", None):  # --data sets the field; validate parses it once
        import dataclasses

        config = dataclasses.replace(
            config, data=dataclasses.replace(config.data, source=args.data))
    from scaling.validate import validate  # the choice tables live in the model modules

    return validate(absolute_paths(config))


def absolute_paths(config):
    """Paths given relative to the current directory, made absolute, so that config.json
    means the same from anywhere (a resume or `generate` started elsewhere)."""
    import dataclasses

    from scaling import storage
    from scaling.data.spec import absolute_source

    d = config.data
    source = absolute_source(d.source, storage.absolute)  # mix: parts included

    def path(p):  # a URI (gs://...) is kept as it is
        return storage.absolute(p) if p else p

    tokenizer = d.tokenizer if d.tokenizer in ("sentencepiece", "byte") else path(d.tokenizer)
    if d.tokenizer.startswith("hf:"):  # a HuggingFace tokenizer directory
        tokenizer = "hf:" + path(d.tokenizer[3:])
    data = dataclasses.replace(d, source=source, tokenizer=tokenizer,
                               cache_dir=path(d.cache_dir), tfds_data_dir=path(d.tfds_data_dir))
    return dataclasses.replace(config, data=data)


def stop_at(value: int | None) -> None:
    """--stop_at STEP: a step >= 1 when given."""
    if value is not None and value < 1:
        raise UserError(f"--stop_at {value}: expected a step >= 1")


def int_list(text: str) -> list[int]:
    """--shots "0,1,8,max" -> [0, 1, 8, -1]."""
    try:  # "max": as many demonstrations as fit (scaling.eval.prompts.MAX_SHOTS)
        shots = [-1 if x.strip() == "max" else int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--shots {text!r}: expected integers (or max) separated by "
                        f"commas") from None
    if any(n < 0 for n, x in zip(shots, text.split(","), strict=False) if x.strip() != "max"):
        raise UserError(f"--shots {text!r}: shot counts are >= 0 (write max for as many as "
                        f"fit)")
    return shots


def bounded(flag: str, value, low, high) -> None:
    """One line unless low <= value <= high (a finite number); docs/reliability.md, Bounds."""
    if not (isinstance(value, int) or math.isfinite(value)) or not low <= value <= high:
        raise UserError(f"{flag} {value}: expected a value from {low} to {high:g}")


def decoding_bounds(args) -> None:
    """--beam, --alpha and --batch of the decoding commands, each within its bound."""
    from scaling.bounds import MAX_BATCH, MAX_BEAM

    if getattr(args, "beam", None) is not None:
        bounded("--beam", args.beam, 1, MAX_BEAM)
    if getattr(args, "alpha", None) is not None:
        bounded("--alpha", args.alpha, 0, 10)  # GNMT's length penalty: 0.6-1 in practice
    if getattr(args, "batch", None) is not None:
        bounded("--batch", args.batch, 1, MAX_BATCH)
