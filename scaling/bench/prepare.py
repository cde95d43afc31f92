"""`scaling bench prepare`: token-store build throughput and memory (never run in CI).

For the issue "Data at corpus scale" it measures, on a corpus of `--mb` MB and on its first
quarter (one 4x smaller):

  * `scaling prepare` with the tokenizer given (trained once beforehand on a ~8 MB sample of
    the corpus, so throughput is tokenization, not training), with each `--workers` count,
    interleaved over `--rounds` rounds, each run a child process writing a fresh store:
    MB/s and tokens/s from its build.json and from wall time, peak RSS (VmHWM) of the
    launcher and of its worker processes (with one worker the work runs in the launcher);
  * the bare tokenizer: SentencePiece with num_threads=1 encoding the same documents here;
  * ratios against their goals, and hours for C4 (~800 GB) on N Dataflow workers.

Without `--data` the corpus is synthetic but realistic: JSON-lines files of ~1 MB (as C4 is
distributed), one document a line, each a source file of the running Python's standard
library, repeated in an order drawn from a seeded RNG (deterministic for a given Python).
The corpus and the stores live under a temporary directory ($TMPDIR), removed at the end.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from scaling.bench.prepare_stats import (
    print_bare,
    print_run,
    print_summary,
    run_watched,
    summarize,
)
from scaling.errors import UserError

SAMPLE_MB = 8.0  # the tokenizer is trained on the corpus's first files up to this size
SEED = 0


def make_corpus(root: Path, mb: float, seed: int = SEED) -> list[Path]:
    """Write `mb` MB of JSON-lines files under `root`, ~1 MB each (smaller for tiny corpora,
    so that there are at least 64): one document a line, each a standard-library .py file
    (16 KB on average, like web documents of a few KB rather than one 1 MB document: BPE
    encoding slows down on very long documents), in an order shuffled by `seed`."""
    from scaling.data.sources.corpora import embedded_files, embedded_root

    docs = [json.dumps({"text": p.read_bytes().decode("utf-8")}).encode() + b"\n"
            for p, _ in embedded_files(embedded_root())]
    rng, order, total = random.Random(seed), [], int(mb * 1e6)
    file_bytes = int(min(1e6, max(16e3, total / 64)))
    root.mkdir(parents=True)
    files, written = [], 0
    while written < total:
        lines, size = [], 0
        while size < min(file_bytes, total - written):
            if not order:
                order = list(range(len(docs)))
                rng.shuffle(order)
            lines.append(docs[order.pop()])
            size += len(lines[-1])
        path = root / f"part-{len(files):05d}.jsonl"
        path.write_bytes(b"".join(lines))
        files.append(path)
        written += size
    return files


def link_prefix(files: list[Path], mb: float, dest: Path) -> list[Path]:
    """Hard links (copies where links fail) to the first `files` up to `mb` MB (one at
    least), under `dest`, named in order."""
    dest.mkdir(parents=True)
    out, size = [], 0
    for i, f in enumerate(files):
        if out and size >= mb * 1e6:
            break
        target = dest / f"{i:05d}-{f.name}"
        try:
            os.link(f, target)
        except OSError:
            shutil.copyfile(f, target)
        out.append(target)
        size += f.stat().st_size
    return out


def corpora(data, given: bool, mb: float, tmp: Path) -> dict:
    """{"large": spec, "small": spec or None, "sample": spec, "note": str}: the generated
    corpus, or the given --data (its first quarter by bytes is the small corpus when it is
    several local files; otherwise only one size is measured)."""
    if not given:
        files = make_corpus(tmp / "corpus", mb)
        kind, large = "jsonl", f"jsonl:{tmp / 'corpus'}/*.jsonl"
        note = (f"generated: {len(files)} JSON-lines files, {_mb(files):,.1f} MB (one "
                f"standard-library source file a document)")
    else:
        kind, large = data.spec.kind, data.source
        if kind not in ("text", "jsonl", "parquet"):
            return {"large": large, "small": None, "sample": large,
                    "note": f"given {large}: one size only (not local files)"}
        from scaling.data.sources.files import glob_files

        files = [p for p, _ in glob_files(large, data.spec.arg)]
        note = f"given {large}: {len(files)} files, {_mb(files):,.1f} MB"
    small = link_prefix(files, _mb(files) / 4, tmp / "small")
    sample = link_prefix(files, SAMPLE_MB, tmp / "sample")
    note += f"; tokenizer sample: the first {len(sample)} files, {_mb(sample):,.1f} MB"
    if len(small) == len(files):
        small_spec = None
        note += "; too few files for a 4x smaller corpus: one size only"
    else:
        small_spec = f"{kind}:{tmp / 'small'}/*"
        note += f"; 4x smaller: the first {len(small)} files, {_mb(small):,.1f} MB"
    return {"large": large, "small": small_spec, "sample": f"{kind}:{tmp / 'sample'}/*",
            "note": note}


def _mb(files: list[Path]) -> float:
    return sum(f.stat().st_size for f in files) / 1e6


def prepare_command(preset: str, sets: list[str], spec: str, out: Path, workers: int,
                    tokenizer: str | None) -> list[str]:
    """The child `scaling prepare` command line (the tokenizer given when not None)."""
    cmd = [sys.executable, "-m", "scaling.cli", "prepare", "--config", preset, "--data", spec,
           "--out", str(out), "--workers", str(workers), "--quiet"]
    for s in sets + ([f"data.tokenizer={tokenizer}"] if tokenizer else []):
        cmd += ["--set", s]
    return cmd


def train_tokenizer(preset: str, sets: list[str], spec: str, tmp: Path) -> tuple[str, float]:
    """Train the tokenizer once: `scaling prepare` of the sample with the default
    (trained) tokenizer; (its spm.model path, seconds)."""
    out = tmp / "tokenizer-store"
    watched = run_watched(prepare_command(preset, sets, spec, out, 1, None),
                          tmp / "tokenizer.log")
    model = out / "tokenizer" / "spm.model"
    if not model.is_file():
        raise UserError(f"bench prepare: the sample store has no {model.name}; the benchmark "
                        f"needs a SentencePiece tokenizer (data.tokenizer=sentencepiece)")
    return str(model), watched["wall_s"]


def time_prepare(cmd: list[str], out: Path) -> dict:
    """Run one `scaling prepare` child, watching its process tree; its build.json figures,
    wall-clock rates and peak RSS. The store is removed afterwards."""
    watched = run_watched(cmd, out.parent / f"{out.name}.log")
    build = json.loads((out / "build.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    wall = watched["wall_s"]
    return {"wall_s": round(wall, 3), "build_s": build["seconds"],
            "text_bytes": build["text_bytes"], "tokens": build["tokens"],
            "mb_per_s": build["mb_per_s"], "tokens_per_s": build["tokens_per_s"],
            "wall_mb_per_s": round(build["text_bytes"] / 1e6 / wall, 3),
            **{k: v for k, v in watched.items() if k != "wall_s"}}


def bare_tokenizer(model: str, data, spec: str) -> dict:
    """SentencePiece alone (num_threads=1) on the documents of `spec`, one at a time, as a
    worker reads them; only encoding is timed."""
    import sentencepiece as spm

    from scaling.data import sources

    sp = spm.SentencePieceProcessor(model_file=model)
    units = sources.list_units(dataclasses.replace(data, source=spec))
    seconds = text_bytes = tokens = 0
    for unit in units:
        for _, text in sources.read_unit(unit, data.text_field, ""):
            t = time.perf_counter()
            ids = sp.encode([text], num_threads=1)
            seconds += time.perf_counter() - t
            text_bytes += len(text.encode("utf-8"))
            tokens += len(ids[0])
    return {"seconds": round(seconds, 3), "text_bytes": text_bytes, "tokens": tokens,
            "mb_per_s": round(text_bytes / 1e6 / seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1)}


def measure(c: dict, counts: list[int], rounds: int, tokenizer: str, data,
            command) -> tuple[list[dict], list[dict]]:
    """The timed runs, round by round: each corpus size with each worker count (their order
    reversed every other round, so that drift in the machine's load favours neither), then
    the bare tokenizer on the large corpus. `command(spec, out, workers)`: the child's
    command line. Returns (prepare runs, bare tokenizer runs)."""
    runs, bare = [], []
    sizes = [s for s in ("large", "small") if c[s]]
    for r in range(rounds):
        for size in sizes:
            for w in counts if r % 2 == 0 else counts[::-1]:
                out = c["tmp"] / "runs" / f"r{r}-{size}-w{w}"
                out.parent.mkdir(exist_ok=True)
                runs.append({"round": r + 1, "corpus": size, "workers": w,
                             **time_prepare(command(c[size], out, w), out)})
                print_run(runs[-1])
        bare.append({"round": r + 1, **bare_tokenizer(tokenizer, data, c["large"])})
        print_bare(bare[-1])
    return runs, bare


def parse_workers(text: str) -> list[int]:
    """--workers "1,2" -> [1, 2]."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise UserError(f"--workers {text!r}: expected worker counts >= 1 separated by commas, "
                        f"e.g. 1,2")
    return sorted(set(counts))


def bench_prepare(config, preset: str, sets: list[str], given: bool, mb: float = 300.0,
                  rounds: int = 2, workers: str = "1,2", output: str | None = None) -> int:
    """Run the benchmark (module docstring) and print its table, ratios and extrapolation.
    `config`: the validated config (its data.source is the corpus when `given`); `preset`
    and `sets` are passed on to the child `scaling prepare` commands."""
    counts = parse_workers(workers)
    if rounds < 1 or not mb > 0:
        raise UserError(f"--rounds {rounds} --mb {mb}: need at least one round and a "
                        f"positive corpus size")
    sets = [s for s in sets if not s.startswith(("data.tokenizer=", "data.source="))]
    tokenizer = config.data.tokenizer
    if tokenizer == "byte" or tokenizer.startswith("hf:"):
        raise UserError(f"data.tokenizer={tokenizer}: bench prepare measures SentencePiece "
                        f"(the default, trained once, or a given .model file)")
    tmp = Path(tempfile.mkdtemp(prefix="scaling-bench-prepare-"))
    try:
        c = {**corpora(config.data, given, mb, tmp), "tmp": tmp}
        print(f"corpus: {c['note']}; under {tmp}", flush=True)
        if tokenizer == "sentencepiece":
            tokenizer, train_s = train_tokenizer(preset, sets, c["sample"], tmp)
            print(f"tokenizer: trained once on {c['sample']} in {train_s:.1f} s (a full "
                  f"prepare of the sample, default data.tokenizer=sentencepiece)", flush=True)
        command = functools.partial(prepare_command, preset, sets, tokenizer=tokenizer)
        runs, bare = measure(c, counts, rounds, tokenizer, config.data, command)
        result = {"preset": preset, "sets": sets, "tokenizer": tokenizer,
                  "corpus": {k: v for k, v in c.items() if k != "tmp"},
                  "cpus": os.cpu_count(), "runs": runs, "bare": bare,
                  "summary": summarize(runs, bare, counts)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_summary(result["summary"])
    if output:
        Path(output).write_text(json.dumps(result, indent=1) + "\n")
        print(f"results: {output}")
    return 0
