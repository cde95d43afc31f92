"""`scaling translate --workdir RUN [--input FILE|-]`: translate one source sentence a line
with an encdec run, to stdout."""

from __future__ import annotations

import argparse

from scaling.commands.common import decoding_bounds


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling translate`."""
    p.add_argument("--workdir", required=True, help="run directory of an encdec run")
    p.add_argument("--input", default="-", help="file of sources, one a line; - = stdin")
    p.add_argument("--beam", type=int, default=4, help="beam size; 1 = greedy")
    p.add_argument("--alpha", type=float, default=0.6,
                   help="length penalty ((5 + |Y|) / 6)^alpha (GNMT; Vaswani et al. §6.1)")
    p.add_argument("--max-extra-len", type=int, default=50,
                   help="stop a translation after its source length + this many tokens")
    p.add_argument("--batch", type=int, default=64, help="sources decoded together")


def run(args) -> int:
    """Check the decoding bounds and translate."""
    from scaling.eval.translate import translate_command

    decoding_bounds(args)
    return translate_command(args.workdir, args.input, args.beam, args.alpha,
                             args.max_extra_len, args.batch)
