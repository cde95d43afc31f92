"""`scaling params --config PRESET [--json]`: total and non-embedding parameter counts."""

from __future__ import annotations

import argparse
import json

from scaling.commands.common import config_args, load_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling params`."""
    config_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    """Print the counts (read off the model with jax.eval_shape)."""
    config = load_config(args)
    from scaling.params import count_params

    counts = count_params(config)
    if args.json:
        print(json.dumps({"preset": config.name, **counts}))
    else:
        print(f"{config.name}: {counts['total']:,} parameters "
              f"({counts['non_embedding']:,} non-embedding)")
    return 0
