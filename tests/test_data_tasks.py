"""seq2seq pipelines, dispatch through the objective registry and the
throughput probe."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from scaling.config import Config, DataConfig, ModelConfig, TrainConfig
from scaling.data import (
    LMData,
    MLMData,
    Seq2SeqData,
    load_seq2seq_data,
    measure_throughput,
)
from scaling.data.batches.seq2seq import seq2seq_batch, seq2seq_fields
from scaling.data.spec import parse_spec
from scaling.errors import DataError
from scaling.families import objective_of

PAIRS = [(f"hello number {i}", f"hallo nummer {i}") for i in range(40)]


class ToyTranslate(tfds.core.GeneratorBasedBuilder):
    """A tiny local translation dataset (config "de-en", fields de and en)."""

    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="de-en")]

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {"de": tfds.features.Text(), "en": tfds.features.Text()}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(PAIRS[:32]),
                "validation": self._generate_examples(PAIRS[32:])}

    def _generate_examples(self, pairs):
        for i, (en, de) in enumerate(pairs):
            yield i, {"en": en, "de": de}


def make_config(tmp_path, source, family="gpt", **data) -> Config:
    data.setdefault("tokenizer", "byte")
    return Config(
        model=ModelConfig(family=family, n_decoder_layers=2, vocab_size=512, max_len=64),
        data=DataConfig(source=source, cache_dir=str(tmp_path / "cache"), **data),
        train=TrainConfig(global_batch=8, seq_len=24, eval_batches=2),
    )


def test_seq2seq_batch_hand_example():
    b = seq2seq_batch([np.array([10, 11])], [np.array([20, 21, 22])], T=5, pad_id=0, bos_id=2,
                      eos_id=3)
    np.testing.assert_array_equal(b["inputs"], [[10, 11, 3, 0, 0]])
    np.testing.assert_array_equal(b["input_segment_ids"], [[1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(b["input_positions"], [[0, 1, 2, 0, 0]])
    np.testing.assert_array_equal(b["targets"], [[20, 21, 22, 3, 0]])
    np.testing.assert_array_equal(b["decoder_inputs"], [[2, 20, 21, 22, 0]])
    np.testing.assert_array_equal(b["segment_ids"], [[1, 1, 1, 1, 0]])
    np.testing.assert_array_equal(b["positions"], [[0, 1, 2, 3, 0]])
    np.testing.assert_array_equal(b["weights"], [[1, 1, 1, 1, 0]])
    cut = seq2seq_batch([np.array([10])], [np.array([20, 21, 22])], T=3, pad_id=0, bos_id=2,
                        eos_id=3)
    np.testing.assert_array_equal(cut["targets"], [[20, 21, 22]])  # eos cut off
    np.testing.assert_array_equal(cut["decoder_inputs"], [[2, 20, 21]])


def test_seq2seq_fields_follow_the_translation_config_name():
    assert seq2seq_fields(parse_spec("tfds:wmt14_translate/de-en"), "", "") == ("en", "de")
    assert seq2seq_fields(parse_spec("jsonl:x"), "src", "tgt") == ("src", "tgt")
    with pytest.raises(DataError, match="set both data.input_field and data.target_field"):
        seq2seq_fields(parse_spec("jsonl:x"), "", "")


def test_seq2seq_data_from_a_prepared_translation_dataset(tmp_path):
    tfds_dir = tmp_path / "tfds"
    ToyTranslate(config="de-en", data_dir=str(tfds_dir), file_format="array_record"
                 ).download_and_prepare()
    config = make_config(tmp_path, "tfds:toy_translate/de-en", family="encdec",
                         tfds_data_dir=str(tfds_dir))
    data = load_data(config, process_index=0, process_count=1)
    assert isinstance(data, Seq2SeqData) and data.fields == ("en", "de")
    tok = data.tokenizer
    seen = set()
    for step in range(4):  # one epoch of 32 train pairs
        b = data.batch(step)
        for row in range(8):
            w = b["weights"][row] == 1
            src = tok.decode(b["inputs"][row][b["input_segment_ids"][row] == 1])
            tgt = tok.decode(b["targets"][row][w])
            seen.add((src, tgt))
    assert seen == set(PAIRS[:32])  # each (en, de) pair kept together, every pair once
    again = load_seq2seq_data(config, process_index=0, process_count=1)
    np.testing.assert_array_equal(again.batch(9)["inputs"], data.batch(9)["inputs"])
    assert len(data.eval_batches()) == 2


def load_data(config, **kwargs):
    """The run's pipeline, as the trainer picks it: through the objective registry."""
    return objective_of(config).load_data(config, **kwargs)


def test_load_data_dispatches_on_family_and_throughput_is_positive(tmp_path):
    for i in range(4):
        (tmp_path / f"f{i}.txt").write_text(f"text file {i}\n" * 40)
    source = f"text:{tmp_path}/*.txt"
    assert isinstance(load_data(make_config(tmp_path, source), process_index=0,
                                process_count=1), LMData)
    assert isinstance(load_data(make_config(tmp_path, source, family="bert"), process_index=0,
                                process_count=1), MLMData)
    assert measure_throughput(load_data(make_config(tmp_path, source)), steps=3) > 0
