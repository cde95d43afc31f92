"""`scaling prepare --config PRESET --data SPEC --out STORE`: tokenize a corpus once, on
Apache Beam, into a token store that training reads (--data store:STORE)."""

from __future__ import annotations

import argparse

from scaling.commands.common import config_args, load_config
from scaling.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of `scaling prepare`."""
    config_args(p)
    p.add_argument("--data", default=None,
                   help="the corpus: embedded, text:GLOB, jsonl:GLOB (.gz, .zst), "
                        "parquet:GLOB, tfds:NAME[/CONFIG]")
    p.add_argument("--out", required=True, metavar="STORE",
                   help="the store directory to write (a local path or gs://bucket/path)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (direct runner; default: the CPU count)")
    p.add_argument("--runner", default="direct", choices=["direct", "dataflow", "flink", "spark"],
                   help="Beam runner (dataflow/flink/spark take --beam-option settings)")
    p.add_argument("--beam-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a Beam pipeline option, e.g. --beam-option project=P (repeatable)")
    p.add_argument("--shard-mb", type=float, default=0.0, metavar="MB",
                   help="source MB a shard group holds (default: about 64 groups, 1-256 MB)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def run(args) -> int:
    """Build the store; print its splits, tokenizer and how to train from it."""
    config = load_config(args)  # bad flags fail before the heavy imports
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers {args.workers}: expected at least 1 worker process")
    d = config.data
    if d.spec.kind in ("store", "mix"):
        raise UserError(f"--data {d.source!r}: prepare builds a store from one source "
                        f"(embedded, text:, jsonl:, parquet:, tfds:); prepare each part of a "
                        f"mixture on its own")
    from scaling import storage
    from scaling.data.store.prepare import build, make_plan

    out = storage.absolute(args.out)
    plan = make_plan(d, config.model.vocab_size, d.vocab_size, sentences=d.nsp,
                     shard_mb=args.shard_mb)
    manifest = build(plan, out, workers=args.workers, runner=args.runner,
                     beam_options=tuple(args.beam_option), progress=not args.quiet)
    for split, s in manifest["splits"].items():
        print(f"{split}: {s['tokens']:,} tokens, {s['documents']:,} documents, "
              f"{len(s['shards'])} shard(s)")
    tok = manifest["tokenizer"]
    print(f"tokenizer: {tok['kind']}, {tok['vocab_size']:,} ids, sha256 {tok['hash'][:16]}...")
    print(f"token store: {out}  (train from it: scaling train --config {args.config} "
          f"--data store:{out})")
    return 0
