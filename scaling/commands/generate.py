"""`scaling generate --workdir RUN --prompt TEXT | --prompts FILE`: continue a prompt with a
trained run's model."""

from __future__ import annotations

import argparse
import math

from scaling.commands.common import decoding_bounds
from scaling.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling generate`."""
    p.add_argument("--workdir", required=True, help="run directory written by scaling train")
    p.add_argument("--prompt", default=None, help="text to continue")
    p.add_argument("--prompts", default=None, metavar="FILE",
                   help="a file of prompts, one a line, generated in batches")
    p.add_argument("--top-p", type=float, default=1.0,
                   help="nucleus sampling: the smallest set of tokens with this mass; 1 = all")
    p.add_argument("--stop", action="append", default=[],
                   help="cut the text at this string; backslash escapes such as \\n are "
                        "read (repeatable)")
    p.add_argument("--batch", type=int, default=8, help="--prompts: prompts decoded together")
    p.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=40, help="sample among the K likeliest; 0 = all")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")


def run(args) -> int:
    """Check the sampling flags; print the prompt and its continuation (or write a file's)."""
    from scaling.eval.generate import generate_text

    if not args.temperature >= 0 or not math.isfinite(args.temperature):
        raise UserError(f"--temperature {args.temperature}: expected a finite value >= 0 "
                        f"(0 = greedy)")
    if not 0 < args.top_p <= 1:
        raise UserError(f"--top-p {args.top_p}: expected a mass in (0, 1]")
    if (args.prompt is None) == (args.prompts is None):
        raise UserError("give exactly one of --prompt TEXT and --prompts FILE")
    from scaling.eval.encoding import parse_escapes

    decoding_bounds(args)
    args.stop = [parse_escapes(s) for s in args.stop]  # --stop "\n": a newline
    if args.prompts is not None:
        from scaling.eval.generate import generate_file

        return generate_file(args.workdir, args.prompts, args.max_new_tokens, args.temperature,
                             args.top_k, args.top_p, args.stop, args.seed, args.batch)
    try:
        args.prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError("--prompt is not valid UTF-8 text") from None
    text = generate_text(args.workdir, args.prompt, args.max_new_tokens, args.temperature,
                         args.top_k, args.seed, args.top_p, args.stop)
    print(args.prompt + text)
    return 0
