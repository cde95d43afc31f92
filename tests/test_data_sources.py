"""--data sources: tfds:NAME (mocked, or prepared from a local copy), text:GLOB, jsonl:GLOB."""

import importlib
import json
import os
import types
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds

from scaling.config import Config, DataConfig, ModelConfig, TrainConfig
from scaling.data import load_lm_data
from scaling.data.sources import SINGLE_FILE_PARTS
from scaling.data.sources.tfds import choose_splits
from scaling.errors import DataError

BOS, EOS, OFFSET = 2, 3, 7  # byte tokenizer: id = byte + 7


def make_config(tmp_path, source, **data) -> Config:
    data.setdefault("tokenizer", "byte")
    return Config(
        model=ModelConfig(vocab_size=512, max_len=64),
        data=DataConfig(source=source, cache_dir=str(tmp_path / "cache"), **data),
        train=TrainConfig(global_batch=8, seq_len=32, eval_batches=2),
    )


def load(config):
    return load_lm_data(config, process_index=0, process_count=1)


def byte_doc(text: str) -> list[int]:
    return [BOS, *(b + OFFSET for b in text.encode("utf-8")), EOS]


# ---------------------------------------------------------------------------------------------
# tfds:NAME


@pytest.fixture
def shakespeare_download(tmp_path):
    """TFDS's real tiny_shakespeare builder, its download replaced by a local file.

    The builder reads the file with tf.io.gfile; TensorFlow is not installed, so a shim with
    Python's open stands in (reading a prepared dataset never needs TensorFlow).
    """
    text = "".join(f"Line {i}: before we proceed any further, hear me speak.\n" for i in range(600))
    path = tmp_path / "input.txt"
    path.write_text(text)
    module = importlib.import_module(
        "tensorflow_datasets.datasets.tiny_shakespeare.tiny_shakespeare_dataset_builder")
    gfile = types.SimpleNamespace(isdir=os.path.isdir, GFile=open)
    with mock.patch.object(module, "tf", types.SimpleNamespace(io=types.SimpleNamespace(
            gfile=gfile))), mock.patch.object(
            tfds.download.DownloadManager, "download", lambda self, url: str(path)):
        yield text


def test_tfds_dataset_prepared_from_a_local_copy(tmp_path, shakespeare_download):
    text = shakespeare_download
    config = make_config(tmp_path, "tfds:tiny_shakespeare", tfds_data_dir=str(tmp_path / "tfds"))
    data = load(config)
    # TFDS documents tiny_shakespeare as 90% / 5% / 5% (train / validation / test) of the text.
    i = int(len(text) * 0.9)
    validation = text[i:][: int(len(text[i:]) * 0.5)]
    val = data._validation
    np.testing.assert_array_equal(val.read(0, val.num_tokens), byte_doc(validation))
    assert data.train_tokens == len(byte_doc(text[:i]))
    assert (tmp_path / "tfds" / "tiny_shakespeare").is_dir()
    assert data.batch(3)["inputs"].shape == (8, 32)


def test_tfds_mock_data_feeds_batches(tmp_path):
    with tfds.testing.mock_data(num_examples=60):
        data = load(make_config(tmp_path, "tfds:tiny_shakespeare"))
        batch = next(data.iterator(0))
    assert batch["inputs"].shape == (8, 32) and len(data.eval_batches()) == 2


def test_unknown_tfds_dataset_is_an_error(tmp_path):
    with pytest.raises(DataError, match="TFDS cannot open it"):
        load(make_config(tmp_path, "tfds:no_such_dataset_anywhere"))


def test_failed_download_is_an_error_that_says_what_to_do(tmp_path, capsys):
    from absl import logging as absl_logging

    def offline(self, url):
        for attempt in range(3):  # as TFDS's retrying downloader would, before giving up
            absl_logging.warning("Retrying download (attempt %d)", attempt)
        raise ConnectionError("no network")

    config = make_config(tmp_path, "tfds:tiny_shakespeare", tfds_data_dir=str(tmp_path / "t"))
    with mock.patch.object(tfds.download.DownloadManager, "download", offline), \
            pytest.raises(DataError, match="preparing the dataset failed .*tfds_data_dir") as e:
        load(config)
    assert "TFDS warned 3 time(s), last: 'Retrying download (attempt 2)'" in str(e.value)
    assert "Retrying" not in capsys.readouterr().err  # summarized in the one line, not printed


def test_choose_splits():
    assert choose_splits({"train", "validation", "test"}) == {
        "train": "train", "validation": "validation"}
    assert choose_splits({"train", "test"}) == {"train": "train", "validation": "test"}
    assert choose_splits({"train"}) == {"train": "train[:97%]", "validation": "train[97%:]"}
    with pytest.raises(DataError, match="no train split"):
        choose_splits({"test"})


# ---------------------------------------------------------------------------------------------
# text:GLOB and jsonl:GLOB


def test_single_text_file_is_cut_into_parts_for_a_validation_split(tmp_path):
    text = "".join(f"line {i} of the only file\n" for i in range(3000))
    (tmp_path / "only.txt").write_text(text)
    data = load(make_config(tmp_path, f"text:{tmp_path}/*.txt"))
    assert data._validation.num_documents >= 1
    assert data._train.num_documents + data._validation.num_documents == SINGLE_FILE_PARTS
    tok = data.tokenizer  # byte: every part is one document, the parts tile the file
    parts = {split: list(getattr(data, f"_{split}").documents(tok))
             for split in ("train", "validation")}
    assert all(p.endswith("\n") and p.startswith("line ") for ps in parts.values() for p in ps)
    joined = "".join(sorted(parts["train"] + parts["validation"], key=lambda p: int(p.split()[1])))
    assert joined == text
    assert data.train_tokens + data._validation.num_tokens == len(text) + 2 * SINGLE_FILE_PARTS


def test_jsonl_documents_come_from_the_text_field(tmp_path):
    docs = [f"document number {i} " * 5 for i in range(80)]
    with open(tmp_path / "a.jsonl", "w") as f:
        for d in docs:
            f.write(json.dumps({"body": d, "id": 1}) + "\n")
    data = load(make_config(tmp_path, f"jsonl:{tmp_path}/*.jsonl", text_field="body"))
    got = data._train.num_tokens + data._validation.num_tokens
    assert got == sum(len(byte_doc(d)) for d in docs)


def test_jsonl_without_the_field_is_an_error(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "hello"}\n{"other": "x"}\n')
    with pytest.raises(DataError, match=r"a.jsonl:2: no string field 'text'"):
        load(make_config(tmp_path, f"jsonl:{tmp_path}/*.jsonl"))


def test_invalid_json_is_an_error(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "hello"}\n{"text": \n')
    with pytest.raises(DataError, match=r"a.jsonl:2: not valid JSON"):
        load(make_config(tmp_path, f"jsonl:{tmp_path}/*.jsonl"))


def test_max_documents_caps_each_split(tmp_path):
    for i in range(40):
        (tmp_path / f"f{i:02d}.txt").write_text(f"file {i} " * 30)
    full = load(make_config(tmp_path, f"text:{tmp_path}/*.txt"))
    capped = load(make_config(tmp_path, f"text:{tmp_path}/*.txt", max_documents=5))
    assert capped._train.num_documents == 5 < full._train.num_documents
    first5 = list(full._train.documents(full.tokenizer))[:5]
    assert list(capped._train.documents(capped.tokenizer)) == first5
    assert capped._train.num_tokens == sum(len(d) + 2 for d in first5)


@pytest.mark.slow
def test_tfds_tiny_shakespeare_trains_through_scaling_train(tmp_path, shakespeare_download,
                                                            capsys):
    """`scaling train --data tfds:tiny_shakespeare`, the download replaced by a local copy."""
    from scaling.cli import main

    sets = ["model.n_layers=1", "model.d_model=64", "model.n_heads=2", "model.d_ff=128",
            "model.max_len=32", "model.vocab_size=384", "data.tokenizer=byte",
            f"data.tfds_data_dir={tmp_path / 'tfds'}", f"data.cache_dir={tmp_path / 'cache'}",
            "train.global_batch=8", "train.steps=30", "train.log_every=10",
            "train.eval_every=30", "train.eval_batches=2", "optim.warmup_steps=3",
            "optim.lr=3e-3"]
    args = ["train", "--config", "gpt-tiny", "--workdir", str(tmp_path / "run"), "--quiet",
            "--data", "tfds:tiny_shakespeare"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 3 and losses[-1] < losses[0]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["final_eval_loss"] < summary["unigram_entropy"]
