"""`scaling convert --from-hf DIR --workdir RUN | --workdir RUN --to-hf DIR`: import a
HuggingFace checkpoint as a run directory, or export a run to HuggingFace."""

from __future__ import annotations

import argparse

from scaling.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling convert`."""
    p.add_argument("--from-hf", default=None, metavar="DIR",
                   help="HuggingFace model directory (config.json + safetensors) to import")
    p.add_argument("--to-hf", default=None, metavar="DIR",
                   help="write the run as a HuggingFace model directory (a new directory)")
    p.add_argument("--workdir", required=True, help="the run directory (new for --from-hf)")
    p.add_argument("--config", default=None,
                   help="--from-hf: a preset the checkpoint's shape must match (default: "
                        "inferred from config.json)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="--from-hf: override a setting of the new run, e.g. "
                        "model.scan_layers=false (repeatable)")
    p.add_argument("--step", type=int, default=None,
                   help="--to-hf: the checkpoint step to export (default: the latest)")


def run(args) -> int:
    """Check which direction was asked for and run the importer or the exporter."""
    if bool(args.from_hf) == bool(args.to_hf):
        raise UserError("convert: give exactly one of --from-hf DIR (import into --workdir) "
                        "or --to-hf DIR (export --workdir)")
    if args.from_hf:
        if args.step is not None:
            raise UserError("--step applies to --to-hf (which checkpoint to export)")
        from scaling.hf.from_hf import import_command

        return import_command(args.from_hf, args.workdir, args.config, args.set)
    if args.config or args.set:
        raise UserError("--config/--set apply to --from-hf; an export uses the run's config")
    from scaling.hf.to_hf import export_command

    return export_command(args.workdir, args.to_hf, args.step)
