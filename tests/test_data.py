"""scaling.data: corpora, tokenizers, packing and the grain loader, on small local corpora."""

import dataclasses
import hashlib
import json
import math
import random
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from scaling.config import Config, DataConfig, ModelConfig, TrainConfig
from scaling.data import (
    ByteTokenizer,
    LMData,
    check_tokenizer_hash,
    load_lm_data,
    padded_vocab_size,
)
from scaling.data.batches.loader import row_batches
from scaling.data.batches.packing import TokenStream, encode_documents, pack_rows, unigram_entropy
from scaling.data.cache import publish_dir, temp_dir_beside
from scaling.data.sources import corpora
from scaling.data.sources.splits import is_validation
from scaling.errors import DataError

WORDS = "def class return self import yield lambda value index total count name".split()


def _fake_source(rng: random.Random, n_lines: int) -> str:
    lines = []
    for _ in range(n_lines):
        indent = "    " * rng.randrange(3)
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(1, 8)))
        lines.append(f"{indent}{words}({rng.randrange(100)})  # é ü ∑")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    """Twelve small generated source files (deterministic)."""
    root = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    for i in range(12):
        sub = root / ("pkg" if i % 3 == 0 else "")
        sub.mkdir(exist_ok=True)
        (sub / f"mod{i:02d}.py").write_text(_fake_source(rng, 120), encoding="utf-8")
    (root / "empty.py").write_text("")  # the embedded corpus skips empty files
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def make_config(cache_dir: Path, source: str = "embedded", **data) -> Config:
    return Config(
        model=ModelConfig(vocab_size=512, max_len=64),
        data=DataConfig(source=source, cache_dir=str(cache_dir), vocab_size=400, **data),
        train=TrainConfig(global_batch=8, seq_len=32, eval_batches=3),
    )


@pytest.fixture(scope="module")
def embedded_at(corpus_dir):
    """The embedded corpus pointed at `corpus_dir` for this module's tests."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(corpora, "embedded_root", lambda: corpus_dir)
        yield


@pytest.fixture(scope="module")
def lm_data(embedded_at, cache_dir) -> LMData:
    return load_lm_data(make_config(cache_dir), process_index=0, process_count=1)


# ---------------------------------------------------------------------------------------------
# Packing, checked against hand-built rows.


def test_pack_rows_matches_hand_built_example():
    # Documents [bos a b eos] [bos c eos] [bos d e f g eos] with bos=2, eos=3; T = 4.
    tokens = np.array([2, 10, 11, 3, 2, 12, 3, 2, 13, 14, 15, 16, 3], np.uint16)
    stream = TokenStream(tokens=tokens, doc_starts=np.array([0, 4, 7]))
    assert stream.num_rows(4) == 3  # rows start at 0, 4, 8 and hold 5 tokens each
    b = pack_rows(stream, np.array([0, 1, 2]), seq_len=4)
    np.testing.assert_array_equal(b["inputs"], [[2, 10, 11, 3], [2, 12, 3, 2], [13, 14, 15, 16]])
    np.testing.assert_array_equal(b["targets"], [[10, 11, 3, 2], [12, 3, 2, 13], [14, 15, 16, 3]])
    np.testing.assert_array_equal(b["segment_ids"], [[1, 1, 1, 1], [1, 1, 1, 2], [1, 1, 1, 1]])
    np.testing.assert_array_equal(b["positions"], [[0, 1, 2, 3], [0, 1, 2, 0], [0, 1, 2, 3]])
    np.testing.assert_array_equal(b["weights"], [[1, 1, 1, 0], [1, 1, 0, 1], [1, 1, 1, 1]])
    assert {k: v.dtype for k, v in b.items()} == {
        "inputs": np.int32, "targets": np.int32, "segment_ids": np.int32,
        "positions": np.int32, "weights": np.float32,
    }


def test_encode_documents_adds_bos_and_eos_per_document():
    stream = encode_documents(["ab", "c"], ByteTokenizer())
    a, b, c = (ord(ch) + 7 for ch in "abc")  # byte ids are offset by the 7 special ids
    np.testing.assert_array_equal(stream.tokens, [2, a, b, 3, 2, c, 3])
    np.testing.assert_array_equal(stream.doc_starts, [0, 4])


def test_weighted_pairs_are_exactly_the_in_document_pairs():
    rng = np.random.default_rng(0)
    docs = [rng.integers(10, 50, size=n).tolist() for n in (1, 7, 3, 20, 2, 11)]
    tokens, starts, expected = [], [], []
    for d in docs:
        starts.append(len(tokens))
        doc = [2, *d, 3]
        tokens += doc
        expected += list(zip(doc[:-1], doc[1:], strict=True))
    stream = TokenStream(tokens=np.array(tokens, np.uint16), doc_starts=np.array(starts))
    T = 5
    b = pack_rows(stream, np.arange(stream.num_rows(T)), seq_len=T)
    w = b["weights"].astype(bool)
    got = list(zip(b["inputs"][w].tolist(), b["targets"][w].tolist(), strict=True))
    covered = stream.num_rows(T) * T  # the stream's pairs that fit in whole rows
    n_cut = sum(1 for s in starts if 0 < s <= covered)  # boundary pairs among them
    assert sorted(got) == sorted(expected[: covered - n_cut])
    # positions count from the segment start; segment ids rise by one at each document start
    for seg, pos in zip(b["segment_ids"], b["positions"], strict=True):
        for t in range(1, T):
            new = seg[t] != seg[t - 1]
            assert (seg[t] == seg[t - 1] + 1 and pos[t] == 0) if new else pos[t] == pos[t - 1] + 1


def test_unigram_entropy_hand_example():
    # Predicted tokens (all but bos): 5, 5, 6, eos -> p = 1/2, 1/4, 1/4 -> H = 1.5 ln 2.
    stream = TokenStream(tokens=np.array([2, 5, 5, 6, 3], np.uint16), doc_starts=np.array([0]))
    assert unigram_entropy(stream, vocab_size=8, bos_id=2) == pytest.approx(1.5 * math.log(2))


def test_unigram_entropy_of_loaded_data_matches_numpy(lm_data):
    tokens = lm_data._validation.read(0, lm_data._validation.num_tokens)
    targets = tokens[tokens != lm_data.tokenizer.bos_id]
    _, counts = np.unique(targets, return_counts=True)
    p = counts / counts.sum()
    assert lm_data.unigram_entropy == pytest.approx(-(p * np.log(p)).sum(), rel=1e-9)
    assert 0 < lm_data.unigram_entropy < math.log(lm_data.tokenizer.vocab_size)


# ---------------------------------------------------------------------------------------------
# Tokenizers.


@pytest.mark.parametrize("text", [
    "def f(x):\n        return x\n",
    "  leading spaces and trailing  \n\n\n",
    "unicode: é ü ∑ 日本語 🙂 and a tab\tend",
    "",
])
def test_sentencepiece_round_trips_text(lm_data, text):
    tok = lm_data.tokenizer
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_byte_tokenizer_round_trips_text():
    tok = ByteTokenizer()
    text = "héllo 🙂\n"
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) == len(text.encode("utf-8"))


def test_special_ids_are_declared_once(lm_data):
    tok = lm_data.tokenizer
    assert (tok.pad_id, tok.bos_id, tok.eos_id) == (0, 2, 3)
    assert {tok.mask_id, tok.cls_id, tok.sep_id} == {4, 5, 6}
    byte = ByteTokenizer()
    assert (byte.pad_id, byte.bos_id, byte.eos_id, byte.mask_id) == (0, 2, 3, 4)
    assert tok.encode("[MASK]") != [tok.mask_id]  # text never produces a control id


def test_tokenizer_is_cached_and_hash_is_sha256_of_the_model(lm_data, cache_dir):
    models = list((cache_dir / "stores").glob("embedded-*/tokenizer/spm.model"))
    assert len(models) == 1
    assert lm_data.tokenizer.hash == hashlib.sha256(models[0].read_bytes()).hexdigest()
    assert lm_data.tokenizer.vocab_size <= 400


def test_tokenizer_loads_from_model_path(embedded_at, cache_dir, lm_data, tmp_path):
    path = tmp_path / "my.model"
    model = next((cache_dir / "stores").glob("embedded-*/tokenizer/spm.model"))
    path.write_bytes(model.read_bytes())
    data = load_lm_data(make_config(cache_dir, tokenizer=str(path)), process_index=0,
                        process_count=1)
    assert data.tokenizer.hash == lm_data.tokenizer.hash
    np.testing.assert_array_equal(data.batch(3)["inputs"], lm_data.batch(3)["inputs"])


def test_tokenizer_larger_than_model_vocab_is_an_error(embedded_at, cache_dir):
    config = make_config(cache_dir, tokenizer="byte")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, vocab_size=200))
    with pytest.raises(DataError, match=r"vocab_size=263 exceeds model.vocab_size=200"):
        load_lm_data(config, process_index=0, process_count=1)


def test_missing_tokenizer_model_path_is_an_error(embedded_at, cache_dir, tmp_path):
    missing = tmp_path / "nope.model"
    with pytest.raises(DataError, match="no such .model file"):
        load_lm_data(make_config(cache_dir, tokenizer=str(missing)), process_index=0,
                     process_count=1)


# ---------------------------------------------------------------------------------------------
# Batches: shapes, purity, resume, sharding, epochs.


def test_batch_shapes_and_dtypes(lm_data):
    b = lm_data.batch(0)
    assert set(b) == {"inputs", "targets", "segment_ids", "positions", "weights"}
    for key, value in b.items():
        assert value.shape == (8, 32), key
    assert b["weights"].dtype == np.float32 and b["inputs"].dtype == np.int32
    np.testing.assert_array_equal(b["inputs"][:, 1:], b["targets"][:, :-1])


def test_batch_is_a_pure_function_of_seed_and_step(embedded_at, cache_dir, lm_data):
    fresh = load_lm_data(make_config(cache_dir), process_index=0, process_count=1)
    for step in (0, 1, 17, 1000):
        a, b = lm_data.batch(step), fresh.batch(step)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    other = load_lm_data(make_config(cache_dir, seed=1), process_index=0, process_count=1)
    assert not np.array_equal(other.batch(0)["inputs"], lm_data.batch(0)["inputs"])


def test_iterator_resumes_exactly_from_its_state(lm_data):
    it = lm_data.iterator(0)
    first = [next(it) for _ in range(3)]
    state = json.loads(json.dumps(it.get_state()))  # JSON round trip, as a checkpoint does
    rest = [next(it) for _ in range(3)]
    resumed = lm_data.iterator(0)
    resumed.set_state(state)
    for want, got in zip(rest, [next(resumed) for _ in range(3)], strict=True):
        for key in want:
            np.testing.assert_array_equal(want[key], got[key])
    for step, batch in enumerate(first):
        np.testing.assert_array_equal(batch["inputs"], lm_data.batch(step)["inputs"])


def test_set_state_for_other_data_warns(lm_data):
    it = lm_data.iterator(0)
    with pytest.warns(UserWarning, match="saved for other data"):
        it.set_state({**it.get_state(), "seed": 99})


def test_processes_read_disjoint_shards_of_the_global_batch(embedded_at, cache_dir, lm_data):
    config = make_config(cache_dir)
    shards = [load_lm_data(config, process_index=p, process_count=2) for p in range(2)]
    for step in (0, 5):
        whole = lm_data.batch(step)
        parts = [s.batch(step) for s in shards]
        assert parts[0]["inputs"].shape == (4, 32)
        for key in whole:
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), whole[key])


def test_each_epoch_is_a_new_permutation_of_all_rows():
    ds = row_batches(num_rows=10, seed=7, local_batch=2, process_index=0, process_count=1)
    epochs = [np.concatenate([ds[s] for s in range(5 * e, 5 * e + 5)]) for e in range(3)]
    for rows in epochs:
        assert sorted(rows.tolist()) == list(range(10))
    assert len({tuple(r) for r in epochs}) == 3


def test_eval_batches_are_fixed_and_come_from_validation(embedded_at, cache_dir, lm_data):
    evals = lm_data.eval_batches()
    assert len(evals) == 3
    fresh = load_lm_data(make_config(cache_dir), process_index=0, process_count=1)
    for a, b in zip(evals, fresh.eval_batches(), strict=True):
        np.testing.assert_array_equal(a["inputs"], b["inputs"])
    val = lm_data._validation.read(0, lm_data._validation.num_tokens)
    row = evals[0]["inputs"][0]
    windows = np.lib.stride_tricks.sliding_window_view(val, len(row))
    assert (windows == row).all(axis=1).any()


def test_train_tokens_counts_the_train_stream(lm_data, corpus_dir):
    train_ids, _ = _split_ids(corpus_dir)
    texts = [(corpus_dir / k).read_text(encoding="utf-8") for k in train_ids]
    tok = lm_data.tokenizer
    assert lm_data.train_tokens == sum(len(tok.encode(t)) + 2 for t in texts)


def _split_ids(corpus_dir):
    """(train, validation) document keys of the corpus, by the rule written out here: the
    validation split is the files whose sha256(key) mod 1000 < 30, else the smallest hash."""
    keys = sorted(p.relative_to(corpus_dir).as_posix() for p in corpus_dir.rglob("*.py")
                  if p.stat().st_size)
    value = {k: int.from_bytes(hashlib.sha256(k.encode()).digest()[:8], "big") for k in keys}
    val = [k for k in keys if value[k] % 1000 < 30] or [
        min(keys, key=lambda k: hashlib.sha256(k.encode()).digest())]
    return [k for k in keys if k not in val], val


# ---------------------------------------------------------------------------------------------
# Corpora: the embedded listing, the split by file, the cache.


def test_embedded_corpus_lists_stdlib_sources_deterministically():
    root = Path(sysconfig.get_paths()["stdlib"])  # embedded_root() may be patched here
    files = corpora.embedded_files(root)
    rels = [rel for _, rel in files]
    assert "os.py" in rels and "json/decoder.py" in rels
    assert not any(part in corpora.EXCLUDED_DIRS for r in rels for part in r.split("/")[:-1])
    assert all(r.endswith(".py") for r in rels)
    assert rels == [rel for _, rel in corpora.embedded_files(root)]


def test_split_is_by_document_hash():
    keys = [f"pkg/mod{i}.py" for i in range(2000)]
    validation = [k for k in keys if is_validation(k)]
    assert 0.015 < len(validation) / len(keys) < 0.045


def test_two_document_corpus_gets_one_document_in_each_split(tmp_path):
    for name in ("a", "b"):  # both hash to train: the smallest hash moves to validation
        (tmp_path / f"{name}.txt").write_text(f"document {name}\n" * 50)
    assert not is_validation("a.txt") and not is_validation("b.txt")
    data = load_lm_data(make_config(tmp_path, f"text:{tmp_path}/*.txt", tokenizer="byte"),
                        process_index=0, process_count=1)
    first = min(["a.txt", "b.txt"], key=lambda k: hashlib.sha256(k.encode()).digest())
    assert [ByteTokenizer().decode(np.asarray(d)) for d in _docs(data._validation)] == [
        (tmp_path / first).read_text()]


def _docs(split):
    tokens, (_, starts) = split.read(0, split.num_tokens), split.locate(
        np.arange(split.num_tokens))
    bounds = np.flatnonzero(np.diff(starts)) + 1
    return np.split(tokens, bounds)


def test_store_splits_are_disjoint_and_cover_the_files(lm_data, corpus_dir):
    tok = lm_data.tokenizer
    seen = {split: sorted(tok.decode(np.asarray(d)) for d in _docs(getattr(lm_data, f"_{split}")))
            for split in ("train", "validation")}
    train_ids, val_ids = _split_ids(corpus_dir)
    for split, ids in (("train", train_ids), ("validation", val_ids)):
        assert seen[split] == sorted((corpus_dir / k).read_text(encoding="utf-8") for k in ids)


def test_second_load_reuses_the_cache(embedded_at, cache_dir, lm_data, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("rebuilt a cached store")

    monkeypatch.setattr("scaling.data.store.pipeline.run", fail)
    monkeypatch.setattr("scaling.data.tokenizers.sentencepiece.train_sentencepiece", fail)
    load_lm_data(make_config(cache_dir), process_index=0, process_count=1)


def test_publish_keeps_the_first_complete_copy(tmp_path):
    final = tmp_path / "built"
    first, second = temp_dir_beside(final), temp_dir_beside(final)
    (first / "a").write_text("first")
    (second / "a").write_text("second")
    publish_dir(first, final)
    publish_dir(second, final)  # lost the race: discarded, no error
    assert (final / "a").read_text() == "first" and not second.exists()


# ---------------------------------------------------------------------------------------------
# Errors: one clear DataError each.


def test_text_glob_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no files match"):
        load_lm_data(make_config(tmp_path, f"text:{tmp_path}/*.txt"), process_index=0,
                     process_count=1)


def test_empty_text_file_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("some text\n")
    (tmp_path / "b.txt").write_text("")
    with pytest.raises(DataError, match=r"b.txt is empty"):
        load_lm_data(make_config(tmp_path, f"text:{tmp_path}/*.txt"), process_index=0,
                     process_count=1)


def test_non_utf8_file_is_an_error(tmp_path):
    (tmp_path / "a.txt").write_text("fine\n")
    (tmp_path / "b.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(DataError, match=r"b.txt: not UTF-8"):
        load_lm_data(make_config(tmp_path, f"text:{tmp_path}/*.txt"), process_index=0,
                     process_count=1)


def test_unknown_source_is_an_error(tmp_path):
    with pytest.raises(DataError, match="unknown data source"):
        load_lm_data(make_config(tmp_path, "ftp:somewhere"), process_index=0, process_count=1)


def test_dataset_smaller_than_one_batch_is_an_error(tmp_path):
    for name in "ab":
        (tmp_path / f"{name}.txt").write_text("tiny\n")
    with pytest.raises(DataError, match=r"fewer than 8 \(one batch\)"):
        load_lm_data(make_config(tmp_path, f"text:{tmp_path}/*.txt", tokenizer="byte"),
                     process_index=0, process_count=1)


def test_out_of_vocabulary_id_is_caught_on_the_host():
    tokens = np.array([2, 5, 300, 6, 3] * 20, np.uint16)  # 300 >= byte vocab of 263
    stream = TokenStream(tokens=tokens, doc_starts=np.array([0]))
    data = LMData(tokenizer=ByteTokenizer(), train=stream, validation=stream, seq_len=4,
                  global_batch=4, eval_batches=1, seed=0, process_index=0, process_count=1,
                  dataset_key="test")
    with pytest.raises(DataError, match=r"token id 300 .* outside the vocabulary \[0, 263\)"):
        for step in range(10):
            data.batch(step)


# ---------------------------------------------------------------------------------------------
# Helpers the trainer uses.


@pytest.mark.parametrize(("n", "padded"), [(1, 128), (128, 128), (129, 256), (50257, 50304)])
def test_padded_vocab_size_rounds_up_to_128(n, padded):
    assert padded_vocab_size(n) == padded


def test_check_tokenizer_hash(lm_data):
    check_tokenizer_hash(lm_data.tokenizer.hash, lm_data.tokenizer)
    with pytest.raises(DataError, match="differs from the checkpoint"):
        check_tokenizer_hash(ByteTokenizer().hash, lm_data.tokenizer)


def test_a_process_that_waits_for_a_store_that_never_comes_says_so(tmp_path, monkeypatch):
    from scaling.data.store import for_run

    monkeypatch.setattr(for_run, "WAIT_SECONDS", 0.2)
    with pytest.raises(DataError, match=r"process 1: the token store .* did not appear within "
                                        r"0 s; process 0 builds it"):
        for_run._wait_for(str(tmp_path / "never"), 1)
