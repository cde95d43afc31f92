"""`scaling prepare`: turn a corpus into a token store (see layout.py for the files).

    plan = make_plan(data, ...)     # list the source, plan shard groups, fix the tokenizer
    build(plan, STORE, workers=N)   # the Beam pipeline, then the manifest, written last

The store's identity (`build_key`) covers the format, the source (file names, sizes and
mtimes), the tokenizer (its hash, or how it is trained), the shard size and the layouts; the
worker count and runner are not part of it: the files are byte-identical for any of them.
A killed build leaves `.parts/` and no manifest; rerunning it skips the finished groups.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field

from scaling import storage
from scaling.data import sources
from scaling.data.store import layout
from scaling.data.store.shards import Group, Settings, build_group, plan_groups
from scaling.errors import DataError

MIN_SHARD_BYTES, MAX_SHARD_BYTES, TARGET_GROUPS = 1 << 20, 256 << 20, 64


@dataclass(frozen=True)
class Plan:
    """Everything a build needs, computed from the listing alone (no document read)."""

    data: object  # the DataConfig
    units: list
    groups: list
    source_fingerprint: str
    tokenizer: object  # the given tokenizer, or None: train one on the corpus
    vocab_size: int  # the trained tokenizer's size
    sentences: bool
    dtype: str
    shard_bytes: int
    build_key: str
    sample_chars: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def text_field(self) -> str:
        return self.data.text_field

    @property
    def tfds_data_dir(self) -> str:
        from scaling.data.sources.tfds import tfds_data_dir

        return tfds_data_dir(self.data) or "" if self.data.spec.kind == "tfds" else ""


def shard_bytes_for(total: int) -> int:
    """Automatic shard size: about TARGET_GROUPS groups, within [1 MiB, 256 MiB]."""
    return int(min(MAX_SHARD_BYTES, max(MIN_SHARD_BYTES, total // TARGET_GROUPS)))


def make_plan(data, model_vocab_size: int, vocab_size: int = 0, sentences: bool = False,
              shard_mb: float = 0.0) -> Plan:
    """The plan for `data` (a DataConfig): units, groups, tokenizer and the store's key."""
    from scaling.data.tokenizers import SAMPLE_CHARS, load_tokenizer

    units = sources.list_units(data)
    total = sum(u.size for u in units)
    if shard_mb < 0 or shard_mb != shard_mb:
        raise DataError(f"--shard-mb {shard_mb}: expected a positive size in MB (0 = auto)")
    shard_bytes = int(shard_mb * 1e6) if shard_mb else shard_bytes_for(total)
    fp = sources.fingerprint(units, data.text_field)
    vocab_size = vocab_size or model_vocab_size
    if data.tokenizer == "sentencepiece":
        given, identity, size = None, ["train", data.tokenizer_type, vocab_size,
                                       SAMPLE_CHARS], vocab_size
    else:
        given = load_tokenizer(data.tokenizer, data.tokenizer_type, vocab_size, None,
                               None, model_vocab_size)
        identity, size = ["given", given.hash], given.vocab_size
    dtype = "uint16" if size <= 2**16 else "int32"
    key = hashlib.sha256(json.dumps(
        [layout.FORMAT, fp, identity, shard_bytes, sentences, dtype]).encode()).hexdigest()
    return Plan(data, units, plan_groups(units, shard_bytes), fp, given, vocab_size, sentences,
                dtype, shard_bytes, key, SAMPLE_CHARS)


def train_and_save(sample, store: str, vocab_size: int, model_type: str):
    """Train SentencePiece on the drawn sample (in source order) and save it into the store;
    the TokenizerRef the tokenizing workers load."""
    from scaling.data.store import sample as sampling
    from scaling.data.store import tokenizer_ref
    from scaling.data.tokenizers.sentencepiece import SentencePieceTokenizer, train_sentencepiece

    model = train_sentencepiece(sampling.in_source_order(sample), vocab_size, model_type)
    tokenizer_ref.save(store, SentencePieceTokenizer(model))
    return tokenizer_ref.TokenizerRef("sentencepiece", model=model)


@dataclass(frozen=True)
class _Run:
    """What pipeline.run reads: sample budget, fields and the shard settings."""

    sample_chars: int
    text_field: str
    tfds_data_dir: str
    shard_settings: Settings


def build(plan: Plan, store: str, *, workers: int | None = None, runner: str = "direct",
          beam_options: tuple[str, ...] = (), progress: bool = True) -> dict:
    """Build the store of `plan` at `store` (a local path or a URI); returns its manifest.
    An existing complete store of the same key is returned as it is."""
    from scaling.data.store import pipeline, tokenizer_ref

    store = storage.absolute(store)
    manifest = layout.read_manifest(store)
    if manifest is not None:
        if manifest.get("build_key") != plan.build_key:
            raise DataError(f"{store} already holds a token store of other data or settings; "
                            f"choose another --out or delete it")
        return manifest
    if workers is not None and workers < 1:
        raise DataError(f"--workers {workers}: expected at least 1 worker process")
    started = time.time()
    parts = storage.join(store, layout.PARTS)
    _claim(store, parts, plan)
    done = _finished(parts, plan.groups)
    todo = [g for g in plan.groups if g.index not in done]
    tok = tokenizer_ref.saved(store)
    if plan.tokenizer is not None and tok is None:
        tokenizer_ref.save(store, plan.tokenizer)
        tok = tokenizer_ref.saved(store)  # workers read the store's copy (a cluster sees it)
    ref = tokenizer_ref.ref_of(tok) if tok is not None else None
    settings = Settings(store, plan.text_field, plan.tfds_data_dir, plan.sentences, plan.dtype)
    workers = workers or max(1, min(sources.cpu_count(), len(todo)))
    if todo or ref is None:
        run = _Run(plan.sample_chars, plan.text_field, plan.tfds_data_dir, settings)
        train = functools.partial(train_and_save, store=store, vocab_size=plan.vocab_size,
                                  model_type=plan.data.tokenizer_type)
        opts = pipeline.options(runner, workers, list(beam_options))
        with _Progress(store, plan, len(done), progress):
            try:
                pipeline.run(run, todo, plan.units, ref, train, opts,
                             subprocesses=runner == "direct" and workers > 1)
            except Exception as e:  # a worker's DataError arrives marked, maybe wrapped
                message = pipeline.data_error_in(e)
                if message is None:
                    raise
                raise DataError(message) from None
    tok = tokenizer_ref.saved(store)
    stats = _finished(parts, plan.groups)
    missing = [g.index for g in plan.groups if g.index not in stats]
    if missing:
        raise DataError(f"{store}: shard groups {missing[:5]} were not built by the runner; "
                        f"rerun the same command to complete the store")
    stats = _keep_both_splits(plan, stats, tok, settings)
    manifest = _manifest(plan, tok, stats)
    seconds = time.time() - started
    layout.write_json(storage.join(store, layout.BUILD), _build_record(plan, stats, seconds,
                                                                       workers, runner))
    _remove_temporaries(store)
    layout.write_json(storage.join(store, layout.MANIFEST), manifest)
    _remove_quietly(parts)
    return manifest


def _claim(store: str, parts: str, plan: Plan) -> None:
    """Record the plan in .parts/plan.json; an unfinished build of another plan is refused."""
    path = storage.join(parts, "plan.json")
    p = storage.path(path)
    if p.is_file():
        try:
            key = json.loads(p.read_text()).get("build_key")
        except (ValueError, OSError):
            key = None
        if key != plan.build_key:
            raise DataError(f"{store} holds an unfinished build of other data or settings; "
                            f"delete it or choose another --out")
        return
    if storage.listdir(store) and not storage.path(storage.join(store, layout.PARTS)).is_dir():
        raise DataError(f"--out {store} is not empty and not a token store; choose a new "
                        f"directory")
    storage.makedirs(parts)
    layout.write_json(path, {"build_key": plan.build_key})


def _finished(parts: str, groups: list[Group]) -> dict[int, dict]:
    """Statistics of the groups whose marker exists (their shard files are complete); one
    listing of .parts/, then a read per marker."""
    names = set(storage.listdir(parts))
    out = {}
    for g in groups:
        name = f"{g.index:05d}.json"
        if name not in names:
            continue
        try:
            out[g.index] = json.loads(storage.read_text(storage.join(parts, name)))
        except (ValueError, OSError):
            continue  # a marker is written atomically; an unreadable one is redone
    return out


def _keep_both_splits(plan: Plan, stats: dict, tokenizer, settings: Settings) -> dict:
    """If a split of a local source came out empty, move the document with the extreme key
    hash across (scaling/data/sources/splits.py) and rebuild its group here."""
    if any(u.split for u in plan.units):
        return stats  # TFDS: the dataset's own splits
    count = {s: sum(st["local"].get(s, 0) for st in stats.values()) for s in layout.SPLITS}
    if sum(count.values()) < 2:
        raise DataError(f"corpus has {sum(count.values())} non-empty document(s); need at "
                        f"least 2 to form train and validation splits")
    if count["validation"] and count["train"]:
        return stats
    field, pick, to = (("train_min", min, "validation") if not count["validation"]
                       else ("validation_max", max, "train"))
    candidates = [(st[field][0], st[field][1], g) for g, st in stats.items() if st[field]]
    _, key, g = pick(candidates)
    from scaling.data.store.tokenizer_ref import ref_of

    group = plan.groups[g]
    stats = dict(stats)
    stats[g] = build_group(group, ref_of(tokenizer), settings, moved={key: to})
    return stats


def _manifest(plan: Plan, tokenizer, stats: dict) -> dict:
    splits = {}
    for split in layout.SPLITS:
        shards = [part for g in sorted(stats) for part in stats[g]["parts"][split]]
        splits[split] = {"tokens": sum(s["tokens"] for s in shards),
                         "documents": sum(s["documents"] for s in shards), "shards": shards}
    return {
        "format": layout.FORMAT,
        "build_key": plan.build_key,
        "source": {"spec": plan.data.source, "fingerprint": plan.source_fingerprint,
                   "units": len(plan.units), "bytes": sum(u.size for u in plan.units),
                   "text_field": plan.text_field},
        "tokenizer": {"kind": tokenizer.kind, "hash": tokenizer.hash,
                      "vocab_size": tokenizer.vocab_size, "bos_id": tokenizer.bos_id,
                      "eos_id": tokenizer.eos_id},
        "dtype": plan.dtype,
        "document": "[bos] ids eos" if tokenizer.bos_id is not None else "ids eos",
        "layouts": ["documents", "sentences"] if plan.sentences else ["documents"],
        "shard_bytes": plan.shard_bytes,
        "groups": len(plan.groups),
        "splits": splits,
    }


def _build_record(plan: Plan, stats: dict, seconds: float, workers: int, runner: str) -> dict:
    docs = sum(st["documents"] for st in stats.values())
    text = sum(st["bytes"] for st in stats.values())
    tokens = sum(p["tokens"] for st in stats.values() for s in layout.SPLITS
                 for p in st["parts"][s])
    return {"seconds": round(seconds, 3), "workers": workers, "runner": runner,
            "documents": docs, "text_bytes": text, "tokens": tokens,
            "mb_per_s": round(text / 1e6 / max(seconds, 1e-9), 3),
            "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _remove_temporaries(store: str) -> None:
    """Temporary files a killed build left beside the shards and the tokenizer (save_npy's
    `NAME.tmp-PID`, write_atomic's `.NAME.tmp-...`; none on object storage): not part of the
    store. Called once the pipeline is done, so no live writer owns them."""
    if storage.is_remote(store):
        return
    for sub in (*layout.SPLITS, layout.TOKENIZER):
        for name in storage.listdir(storage.join(store, sub)):
            if ".tmp-" in name:
                try:
                    os.remove(os.path.join(store, sub, name))
                except OSError:
                    pass


def _remove_quietly(path: str) -> None:
    try:
        storage.path(path).rmtree()
    except (OSError, ValueError):
        pass


class _Progress:
    """A progress line while the pipeline runs: groups finished, documents and MB read,
    MB/s (from the workers' .parts/ files)."""

    def __init__(self, store: str, plan: Plan, already: int, enabled: bool):
        self.store, self.plan, self.already, self.enabled = store, plan, already, enabled
        self.total_mb = sum(u.size for u in plan.units) / 1e6
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        if self.enabled:
            self.started = time.monotonic()
            self._say(f"prepare: {len(self.plan.groups)} shard group(s) from "
                      f"{sources.describe(self.plan.units)}"
                      + ("" if self.plan.tokenizer is not None
                         else "; drawing the tokenizer sample and training it first"))
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join()
            if exc[0] is None:
                self._report(final=True)

    def _loop(self):
        while not self._stop.wait(5.0):
            self._report(final=False)

    def _report(self, final: bool):
        parts = storage.join(self.store, layout.PARTS)
        finished = sum(n[:5].isdigit() for n in storage.listdir(parts))
        docs = text = 0
        for name in storage.listdir(storage.join(parts, "progress")):
            try:
                st = json.loads(storage.read_text(storage.join(parts, "progress", name)))
            except (OSError, ValueError):
                continue
            docs, text = docs + st["documents"], text + st["bytes"]
        if not final and not docs and finished == self.already:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self._say(f"prepare: {finished}/{len(self.plan.groups)} groups, {docs:,} documents, "
                  f"{text / 1e6:,.1f} MB of text ({text / 1e6 / elapsed:,.2f} MB/s, "
                  f"{elapsed:,.0f} s)")

    @staticmethod
    def _say(line: str) -> None:
        from scaling.data.store import pipeline

        if pipeline.ORIGINAL_STDERR is not None:
            os.write(pipeline.ORIGINAL_STDERR, (line + "\n").encode())
        else:
            print(line, file=sys.stderr, flush=True)
