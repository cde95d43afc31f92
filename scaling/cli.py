"""The `scaling` command. This file only parses flags and dispatches; work lives elsewhere.

Bad input of any kind ends with one line `scaling: error: ...` and exit code 2.

Each command is a module of scaling/commands/ with `add_arguments(parser)` and
`run(args) -> int`; adding one is writing that module and a row of COMMANDS.
"""

from __future__ import annotations

import argparse
import os
import sys

from scaling.commands import (
    bench,
    convert,
    finetune,
    fit,
    generate,
    params,
    prepare,
    sweep,
    train,
    translate,
)
from scaling.commands import eval as evaluate
from scaling.errors import UserError

MAX_HOST_DEVICES = 1024

# name, module (scaling/commands/), help line; in the order `scaling --help` lists them
COMMANDS = (
    ("train", train, "train a preset (resumes from --workdir)"),
    ("prepare", prepare, "tokenize a corpus once, on Apache Beam, into a token store that "
                         "training reads (--data store:STORE)"),
    ("finetune", finetune, "fine-tune a pretrained run on a labelled task (BERT heads, GPT-1 "
                           "with the auxiliary LM loss)"),
    ("params", params, "total and non-embedding parameter counts"),
    ("eval", evaluate, "zero- and few-shot multiple-choice evaluation of a run"),
    ("translate", translate, "translate one source sentence a line (encdec runs)"),
    ("generate", generate, "continue a prompt with a trained run's model"),
    ("convert", convert, "import a HuggingFace checkpoint as a run directory, or export a run "
                         "to HuggingFace"),
    ("bench", bench, "benchmarks (never run in CI)"),
    ("sweep", sweep, "run a scaling sweep (resumable; skips finished runs)"),
    ("fit", fit, "fit scaling laws to a results table; plots and report"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the whole usage)
        command = self.prog.removeprefix("scaling").strip()  # main() prints "scaling: error:"
        raise UserError(f"{command + ': ' if command else ''}{message} (see --help)")


def _host_devices(n: int | None) -> None:
    """Simulate n CPU devices; must run before JAX initializes its backends."""
    if n is None:
        return
    if n < 1:
        raise UserError(f"--host-devices {n}: expected a positive number of devices")
    if n > MAX_HOST_DEVICES:
        raise UserError(f"--host-devices {n}: at most {MAX_HOST_DEVICES} simulated CPU devices "
                        f"(each costs memory and compile time); to check a pod-size layout "
                        f"use `scaling bench compile --topology`")
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def build_parser() -> argparse.ArgumentParser:
    """The `scaling` parser: the shared flags and one subparser per row of COMMANDS."""
    parser = _Parser(prog="scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--host-devices", type=int, default=None, metavar="N",
                        help="simulate N CPU devices (sets XLA_FLAGS before JAX starts)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module, help_line in COMMANDS:
        p = sub.add_parser(name, help=help_line)
        module.add_arguments(p)
        p.set_defaults(fn=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `scaling` console script."""
    from scaling.jax_platforms import choose

    choose()  # before JAX initializes: no plugin for absent hardware (it prints errors)
    try:
        args = build_parser().parse_args(argv)
        _host_devices(args.host_devices)
        return int(args.fn(args) or 0)
    except UserError as e:
        print(f"scaling: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only or missing path, a directory for a file
        where = f"{e.filename}: " if e.filename else ""
        print(f"scaling: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except UnicodeError as e:
        print(f"scaling: error: text that is not valid UTF-8 ({e})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scaling: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
