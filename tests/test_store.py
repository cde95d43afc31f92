"""The token store (scaling/data/store/, `scaling prepare`), checked against oracles that do
not come from the store's own code:

  * the files do not depend on the worker count (byte-identical trees);
  * training batches read from a store equal batches from the same text through `text:` and
    batches of an in-memory stream built here (documents in file order, split by the hash
    rule written out below, packed by encode_documents);
  * a killed build publishes nothing, and its rerun completes to the clean build's files;
  * parquet / jsonl / .jsonl.gz / .jsonl.zst sources hold exactly the documents written, in
    the splits their keys (`path:ROW`, `path:LINE`) send them to;
  * a store on (fake) GCS reads back like the local one;
  * bad input ends with one `scaling: error:` line and exit code 2.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fake_gcs import fake_gcs

from scaling.cli import main
from scaling.config import Config, DataConfig, ModelConfig, TrainConfig
from scaling.data import api
from scaling.data.batches.lm import LMData
from scaling.data.batches.packing import TokenStream, encode_documents
from scaling.data.store.reader import open_store
from scaling.data.tokenizers import ByteTokenizer, SentencePieceTokenizer
from scaling.errors import DataError

REPO = Path(__file__).resolve().parents[1]
WORDS = ("alpha beta gamma delta return yield lambda index total count name value "
         "état über naïve ∑ 日本 🙂").split()
SEQ_LEN, GLOBAL_BATCH, EVAL_BATCHES, STEPS = 32, 8, 2, 4


def rule_says_validation(key: str) -> bool:
    """The split rule, written out independently of scaling/data/sources/splits.py: validation iff
    the first 8 bytes of sha256(key), big-endian, are < 30 mod 1000."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 1000 < 30


def _text(rng: random.Random, lines: int) -> str:
    out = []
    for _ in range(lines):
        indent = " " * rng.randrange(0, 8, 4)
        out.append(indent + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 10))))
    return "\n".join(out) + "\n"


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes) except build.json."""
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "build.json"}


def assert_same_tree(a: Path, b: Path) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    differ = [name for name in fa if fa[name] != fb[name]]
    assert not differ, f"files differ between {a} and {b}: {differ}"


def prepare(out, data: str, *sets: str, workers: int = 1, shard_mb: float = 0.01,
            tokenizer: str = "byte") -> list[str]:
    """The argv of `scaling prepare` (small vocabularies, quiet)."""
    argv = ["prepare", "--config", "gpt-tiny", "--data", data, "--out", str(out), "--quiet",
            "--workers", str(workers), "--shard-mb", str(shard_mb),
            "--set", "model.vocab_size=512", "--set", "data.vocab_size=400",
            "--set", f"data.tokenizer={tokenizer}"]
    for s in sets:
        argv += ["--set", s]
    return argv


def run_prepare(capsys, *args, **kwargs) -> None:
    rc = main(prepare(*args, **kwargs))
    err = capsys.readouterr().err
    assert rc == 0, err


def make_config(source: str, tokenizer: str, cache: Path) -> Config:
    return Config(
        model=ModelConfig(vocab_size=512, max_len=64),
        data=DataConfig(source=source, tokenizer=tokenizer, vocab_size=400, cache_dir=str(cache)),
        train=TrainConfig(global_batch=GLOBAL_BATCH, seq_len=SEQ_LEN, eval_batches=EVAL_BATCHES),
    )


def lm(source: str, tokenizer: str, cache: Path) -> LMData:
    return api.load_lm_data(make_config(source, tokenizer, cache), process_index=0,
                            process_count=1)


def assert_same_batches(a: LMData, b: LMData) -> None:
    assert a.train_rows == b.train_rows
    for step in range(STEPS):
        ba, bb = a.batch(step), b.batch(step)
        assert sorted(ba) == sorted(bb)
        for k in ba:
            np.testing.assert_array_equal(ba[k], bb[k], err_msg=f"step {step} {k}")
    for i, (ea, eb) in enumerate(zip(a.eval_batches(), b.eval_batches(), strict=True)):
        for k in ea:
            np.testing.assert_array_equal(ea[k], eb[k], err_msg=f"eval batch {i} {k}")


def one_error_line(capsys, rc: int, *needles: str) -> str:
    """The single `scaling: error:` line of a failed command, checked to name `needles`."""
    captured = capsys.readouterr()
    err = captured.err
    assert rc == 2, (rc, err)
    assert "Traceback" not in err and "Traceback" not in captured.out
    assert "\x1e" not in err and "scaling-data-error" not in err  # pipeline.py's markers
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("scaling: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Fixtures: a multi-file text corpus (with a subdirectory) and stores built from it.


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """34 train and 3 validation files by the rule, some in a subdirectory (keys are
    relative paths, `sub/doc007.txt`)."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "sub").mkdir()
    rng = random.Random(0)
    want = {"train": 34, "validation": 3}
    i = 0
    while any(want.values()):
        rel = f"sub/doc{i:03d}.txt" if i % 4 == 1 else f"doc{i:03d}.txt"
        split = "validation" if rule_says_validation(rel) else "train"
        if want[split]:
            want[split] -= 1
            (root / rel).write_text(_text(rng, rng.randrange(10, 60)), encoding="utf-8")
        i += 1
    return root


def text_spec(corpus: Path) -> str:
    return f"text:{corpus}/**/*.txt"


def oracle(corpus: Path, tokenizer) -> LMData:
    """LMData over in-memory streams: the documents in sorted relative-path order, split by
    `rule_says_validation` of the relative path, each `[bos] ids eos`."""
    docs = {"train": [], "validation": []}
    for path in sorted(corpus.rglob("*.txt"), key=lambda p: p.relative_to(corpus).as_posix()):
        rel = path.relative_to(corpus).as_posix()
        docs["validation" if rule_says_validation(rel) else "train"].append(
            path.read_text(encoding="utf-8"))
    assert len(docs["validation"]) == 3 and len(docs["train"]) == 34
    streams = {s: encode_documents(d, tokenizer) for s, d in docs.items()}
    assert all(isinstance(s, TokenStream) for s in streams.values())
    return LMData(train=streams["train"], validation=streams["validation"], tokenizer=tokenizer,
                  seq_len=SEQ_LEN, global_batch=GLOBAL_BATCH, eval_batches=EVAL_BATCHES, seed=0,
                  process_index=0, process_count=1, dataset_key="oracle")


@pytest.fixture(scope="module")
def byte_store(tmp_path_factory, corpus) -> Path:
    out = tmp_path_factory.mktemp("stores") / "byte"
    assert main(prepare(out, text_spec(corpus))) == 0
    return out


@pytest.fixture(scope="module")
def spm_stores(tmp_path_factory, corpus) -> tuple[Path, Path]:
    """The corpus with a SentencePiece tokenizer trained by the pipeline, built by one worker
    (in process) and by two worker processes."""
    root = tmp_path_factory.mktemp("spm")
    outs = (root / "w1", root / "w2")
    for out, workers in zip(outs, (1, 2), strict=True):
        assert main(prepare(out, text_spec(corpus), workers=workers, shard_mb=0.005,
                            tokenizer="sentencepiece")) == 0
    return outs


# ---------------------------------------------------------------------------------------------
# 1. The worker count does not change a byte.


@pytest.mark.slow
def test_stores_built_by_one_and_two_workers_are_byte_identical(spm_stores, byte_store,
                                                                tmp_path, corpus, capsys):
    w1, w2 = spm_stores
    manifest = json.loads((w1 / "manifest.json").read_text())
    assert manifest["groups"] >= 5 and len(manifest["splits"]["train"]["shards"]) >= 5
    assert (w1 / "tokenizer" / "spm.model").is_file()
    assert json.loads((w2 / "build.json").read_text())["workers"] == 2
    assert_same_tree(w1, w2)
    # the byte-tokenizer store too (no tokenizer-training branch in its pipeline)
    run_prepare(capsys, tmp_path / "byte2", text_spec(corpus), workers=2)
    assert_same_tree(byte_store, tmp_path / "byte2")


# ---------------------------------------------------------------------------------------------
# 2. Batches from a store = batches through text: = batches of an in-memory oracle.


def test_store_batches_equal_text_batches_and_an_in_memory_oracle(byte_store, corpus, cache):
    from_store = lm(f"store:{byte_store}", "byte", cache)
    assert len(from_store._train.names) >= 3  # several shards, read as one stream
    from_text = lm(text_spec(corpus), "byte", cache)  # a store in the cache, auto shard size
    expected = oracle(corpus, ByteTokenizer())
    assert_same_batches(from_store, expected)
    assert_same_batches(from_text, expected)


def test_trained_tokenizer_store_batches_equal_text_batches_and_oracle(spm_stores, corpus,
                                                                       cache):
    model = spm_stores[0] / "tokenizer" / "spm.model"
    from_store = lm(f"store:{spm_stores[1]}", "sentencepiece", cache)
    from_text = lm(text_spec(corpus), str(model), cache)
    tokenizer = SentencePieceTokenizer(model.read_bytes())
    assert from_store.tokenizer.hash == tokenizer.hash == from_text.tokenizer.hash
    expected = oracle(corpus, tokenizer)
    assert_same_batches(from_store, expected)
    assert_same_batches(from_text, expected)


# ---------------------------------------------------------------------------------------------
# 3. A killed build publishes nothing; its rerun completes to the clean build's files.


def subprocess_env() -> dict[str, str]:
    """The environment of a `python -m scaling.cli` child: this checkout first on the path."""
    path = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


def _markers(store: Path) -> list[Path]:
    parts = store / ".parts"
    try:
        return [parts / n for n in os.listdir(parts) if n[:5].isdigit() and n.endswith(".json")]
    except FileNotFoundError:
        return []


def test_a_killed_prepare_publishes_nothing_and_its_rerun_completes(tmp_path, capsys, cache):
    src = tmp_path / "big"
    src.mkdir()
    rng = random.Random(1)
    for i in range(600):  # one shard group a file: hundreds of groups to build
        (src / f"f{i:03d}.txt").write_text(_text(rng, 30), encoding="utf-8")
    store = tmp_path / "killed"
    argv = prepare(store, f"text:{src}/*.txt", shard_mb=0.0001)
    proc = subprocess.Popen([sys.executable, "-m", "scaling.cli", *argv], env=subprocess_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not _markers(store):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no shard group finished in 120 s"
            time.sleep(0.002)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (store / "manifest.json").exists(), (
        "the build finished before it was killed: enlarge the corpus")
    finished = _markers(store)
    assert 0 < len(finished) < 600
    for attempt in (lambda: open_store(str(store)),
                    lambda: api.load_lm_data(make_config(f"store:{store}", "byte", cache),
                                             process_index=0, process_count=1)):
        with pytest.raises(DataError, match="unfinished"):
            attempt()
    # the shard files of groups marked finished: the rerun must not write them again
    kept = {}
    for marker in finished:
        stats = json.loads(marker.read_text())
        for split in ("train", "validation"):
            for part in stats["parts"][split]:
                for what in ("tokens", "docs"):
                    f = store / f"{part['name']}.{what}.npy"
                    kept[f] = f.stat().st_ino
    assert kept
    # what a worker killed in the middle of writing a shard leaves (shards.save_npy)
    (store / "train").mkdir(exist_ok=True)
    (store / "train" / "00599-00.tokens.npy.tmp-99999").write_bytes(b"\x93NUMPY")
    assert main(argv) == 0  # the same command again
    clean = tmp_path / "clean"
    assert main(prepare(clean, f"text:{src}/*.txt", shard_mb=0.0001)) == 0
    capsys.readouterr()
    assert not (store / ".parts").exists()
    assert_same_tree(store, clean)
    assert {f: f.stat().st_ino for f in kept} == kept
    assert open_store(str(store)).train.num_documents == open_store(str(clean)).train.num_documents


# ---------------------------------------------------------------------------------------------
# 4. parquet and (compressed) jsonl sources: every document, in the split its key gives.


@pytest.fixture(scope="module")
def documents() -> list[str | None]:
    """Row texts: multi-line, unicode, one empty and one null (neither is a document)."""
    rng = random.Random(2)
    docs: list[str | None] = [_text(rng, rng.randrange(1, 6)) for _ in range(300)]
    docs[7], docs[150] = "", None
    return docs


def _jsonl_bytes(docs) -> tuple[bytes, dict[int, str]]:
    """The .jsonl file (a blank line after the 10th record) and its text at each 1-based line."""
    lines, at = [], {}
    for i, text in enumerate(d for d in docs if d is not None):
        lines.append(json.dumps({"id": i, "text": text}, ensure_ascii=i % 2 == 0))
        if text:
            at[len(lines)] = text
        if i == 9:
            lines.append("")
    return ("\n".join(lines) + "\n").encode("utf-8"), at


@pytest.fixture(scope="module")
def source_files(tmp_path_factory, documents) -> dict[str, tuple[Path, dict[str, str]]]:
    """Each format: (its file, expected {key: text}) with keys by the documented rule."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    root = tmp_path_factory.mktemp("formats")
    out = {}
    d = root / "parquet"
    d.mkdir()
    pq.write_table(pa.table({"text": pa.array(documents, pa.string()),
                             "n": pa.array(range(len(documents)))}),
                   d / "docs.parquet", row_group_size=64)
    assert pq.ParquetFile(d / "docs.parquet").metadata.num_row_groups == 5
    out["parquet"] = (d / "docs.parquet", {f"docs.parquet:{row}": t
                                           for row, t in enumerate(documents) if t})
    data, at = _jsonl_bytes(documents)
    for name, blob in (("docs.jsonl", data), ("docs.jsonl.gz", gzip.compress(data)),
                       ("docs.jsonl.zst", zstandard.ZstdCompressor().compress(data))):
        d = root / name.replace(".", "_")
        d.mkdir()
        (d / name).write_bytes(blob)
        out[name] = (d / name, {f"{name}:{line}": t for line, t in at.items()})
    return out


@pytest.mark.parametrize("fmt", ["parquet", "docs.jsonl", "docs.jsonl.gz", "docs.jsonl.zst"])
def test_parquet_and_jsonl_stores_hold_every_document_in_its_keyed_split(
        fmt, source_files, documents, tmp_path, capsys):
    path, by_key = source_files[fmt]
    kind = "parquet" if fmt == "parquet" else "jsonl"
    run_prepare(capsys, tmp_path / "store", f"{kind}:{path}", shard_mb=0.002,
                workers=2 if fmt == "docs.jsonl.zst" else 1)
    store = open_store(str(tmp_path / "store"))
    if kind == "parquet":  # a row group a unit: several shard groups
        assert len(store.train.names) >= 2
    tok = ByteTokenizer()
    got = {s: collections.Counter(getattr(store, s).documents(tok))
           for s in ("train", "validation")}
    assert got["train"] + got["validation"] == collections.Counter(
        t for t in documents if t)
    want = {s: collections.Counter(t for k, t in by_key.items()
                                   if rule_says_validation(k) == (s == "validation"))
            for s in ("train", "validation")}
    assert got == want
    # the rule discriminates: with the other numbering (rows from 1, lines from 0) other
    # documents would be validation ones
    step = 1 if kind == "parquet" else -1
    other = collections.Counter(
        t for k, t in by_key.items()
        if rule_says_validation(f"{k.rsplit(':', 1)[0]}:{int(k.rsplit(':', 1)[1]) + step}"))
    assert other != want["validation"]
    # one document's split, spelled out
    key = next(k for k in by_key if rule_says_validation(k))
    assert got["validation"][by_key[key]] >= 1 and by_key[key] not in got["train"]


# ---------------------------------------------------------------------------------------------
# 5. A store on object storage.


def test_a_gcs_store_reads_like_a_local_one(tmp_path, corpus, byte_store, cache, capsys):
    with fake_gcs(tmp_path / "gcs"):
        url = "gs://scaling-test/store"
        run_prepare(capsys, url, text_spec(corpus))
        remote = lm(f"store:{url}", "byte", cache)
        assert_same_batches(remote, lm(f"store:{byte_store}", "byte", cache))
    bucket = tmp_path / "gcs" / "scaling-test" / "store"
    assert not (bucket / ".parts").exists()
    assert_same_tree(bucket, byte_store)


def test_sources_in_a_bucket_build_the_store_their_local_copies_build(tmp_path, corpus,
                                                                       source_files, capsys):
    """Text files, parquet row groups and .jsonl.gz read through gs:// give byte-identical
    shards to the same files on disk; a recursive glob there is one line."""
    bucket = tmp_path / "gcs" / "scaling-test"
    shutil.copytree(corpus, bucket / "corpus")
    for name in ("parquet", "docs.jsonl.gz"):
        path = source_files[name][0]
        shutil.copytree(path.parent, bucket / name)
    with fake_gcs(tmp_path / "gcs"):
        run_prepare(capsys, tmp_path / "text", "text:gs://scaling-test/corpus/*.txt")
        run_prepare(capsys, tmp_path / "text-local", f"text:{corpus}/*.txt")
        rc = main(prepare(tmp_path / "x", "text:gs://scaling-test/corpus/**/*.txt"))
        one_error_line(capsys, rc, "recursive `**` glob is not supported on object storage")
        for name, kind in (("parquet", "parquet"), ("docs.jsonl.gz", "jsonl")):
            local = source_files[name][0]
            run_prepare(capsys, tmp_path / f"local-{name}", f"{kind}:{local}")
            run_prepare(capsys, tmp_path / f"remote-{name}",
                        f"{kind}:gs://scaling-test/{name}/{local.name}")
    assert _shards(tmp_path / "text") == _shards(tmp_path / "text-local")
    for name in ("parquet", "docs.jsonl.gz"):
        assert _shards(tmp_path / f"remote-{name}") == _shards(tmp_path / f"local-{name}")


def _shards(store: Path) -> dict[str, bytes]:
    """The token shards and the tokenizer (the manifest names the source, so it differs)."""
    return {k: v for k, v in _files(store).items() if k.endswith(".npy")
            or k.startswith("tokenizer/")}


# ---------------------------------------------------------------------------------------------
# 6. Bad input: one line, exit code 2.


def test_a_corrupt_parquet_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "x.parquet"
    bad.write_bytes(random.Random(3).randbytes(5000))
    rc = main(prepare(tmp_path / "store", f"parquet:{bad}"))
    one_error_line(capsys, rc, str(bad), "parquet")
    assert not (tmp_path / "store" / "manifest.json").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_truncated_jsonl_gz_is_one_line_from_the_workers(workers, source_files, tmp_path,
                                                           capsys):
    path, _ = source_files["docs.jsonl.gz"]
    cut = tmp_path / "cut.jsonl.gz"
    blob = path.read_bytes()
    cut.write_bytes(blob[: len(blob) * 2 // 3])
    rc = main(prepare(tmp_path / "store", f"jsonl:{cut}", workers=workers))
    one_error_line(capsys, rc, str(cut), "truncated")
    assert not (tmp_path / "store" / "manifest.json").exists()


def test_a_worker_error_is_one_line_on_the_real_stderr(source_files, tmp_path):
    """The command as a user runs it (Beam's own logging not captured by pytest): the
    in-process runner's worker error is the only line on stderr."""
    path, _ = source_files["docs.jsonl.gz"]
    cut = tmp_path / "cut.jsonl.gz"
    blob = path.read_bytes()
    cut.write_bytes(blob[: len(blob) // 2])
    done = subprocess.run([sys.executable, "-m", "scaling.cli",
                           *prepare(tmp_path / "store", f"jsonl:{cut}")],
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("scaling: error: ") and done.stderr.count("\n") == 1, (
        done.stderr)
    assert str(cut) in done.stderr and "truncated" in done.stderr
    assert "\x1e" not in done.stderr and "[while running" not in done.stderr


TRAIN_SETS = ["model.n_layers=1", "model.d_model=32", "model.n_heads=2", "model.d_ff=64",
              "model.max_len=16", "model.vocab_size=512", "train.global_batch=8",
              "train.steps=4", "train.log_every=1", "train.eval_every=2",
              "train.eval_batches=1", "optim.warmup_steps=1"]


def train_argv(store, workdir, *extra: str) -> list[str]:
    flags = [a for s in TRAIN_SETS for a in ("--set", s)]
    return ["train", "--config", "gpt-tiny", "--data", f"store:{store}", "--workdir",
            str(workdir), "--quiet", *flags, *extra]


@pytest.fixture
def single_shard_store(tmp_path, corpus, capsys) -> Path:
    out = tmp_path / "one"
    run_prepare(capsys, out, text_spec(corpus), shard_mb=0)  # auto: one group
    assert [p.name for p in (out / "train").glob("*.tokens.npy")] == ["00000-00.tokens.npy"]
    return out


def test_a_missing_shard_file_is_one_line(single_shard_store, tmp_path, capsys):
    shard = single_shard_store / "train" / "00000-00.tokens.npy"
    shard.unlink()
    rc = main(train_argv(single_shard_store, tmp_path / "run"))
    one_error_line(capsys, rc, str(shard), "missing")


def test_a_manifest_of_another_format_is_one_line(single_shard_store, tmp_path, capsys):
    path = single_shard_store / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "format": "scaling-token-store-v0"}))
    rc = main(train_argv(single_shard_store, tmp_path / "run"))
    one_error_line(capsys, rc, str(path), "scaling-token-store-v0")


def test_bad_prepare_flags_are_one_line(tmp_path, corpus, capsys):
    one_error_line(capsys, main(prepare(tmp_path / "a", text_spec(corpus), workers=0)),
                   "--workers 0")
    argv = prepare(tmp_path / "b", text_spec(corpus)) + ["--beam-option", "project"]
    one_error_line(capsys, main(argv), "--beam-option 'project'", "KEY=VALUE")
    assert not (tmp_path / "b" / "manifest.json").exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    one_error_line(capsys, main(prepare(busy, text_spec(corpus))), str(busy), "not empty")
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]  # left as it was


@pytest.mark.slow
def test_resuming_on_a_store_with_another_tokenizer_is_one_line(byte_store, spm_stores,
                                                                tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_argv(byte_store, run, "--stop_at", "2")) == 0
    capsys.readouterr()
    assert (run / "checkpoints" / "2").is_dir()
    rc = main(train_argv(spm_stores[0], run))
    one_error_line(capsys, rc, "tokenizer")
    assert not (run / "checkpoints" / "4").exists()


def test_the_helpers_see_a_changed_file(tmp_path):
    """assert_same_tree itself: one changed byte, a missing file and an extra one fail it."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "x").mkdir(parents=True)
        (d / "x" / "f.npy").write_bytes(b"\x00\x01")
        (d / "build.json").write_text(str(d))  # ignored
    assert_same_tree(a, b)
    (b / "x" / "f.npy").write_bytes(b"\x00\x02")
    with pytest.raises(AssertionError):
        assert_same_tree(a, b)
    (b / "x" / "f.npy").write_bytes(b"\x00\x01")
    (b / "x" / "g.npy").write_bytes(b"")
    with pytest.raises(AssertionError):
        assert_same_tree(a, b)
