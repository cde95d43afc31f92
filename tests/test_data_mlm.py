"""BERT masking: rates within sampling error, determinism, and what is never masked."""

import math

import numpy as np
import pytest

from scaling.data import ByteTokenizer, MLMData
from scaling.data.batches.mlm import MASK_RATE
from scaling.data.batches.packing import encode_documents
from scaling.errors import DataError


def _mlm_data(process_index=0, process_count=1, seed=0) -> MLMData:
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdefgh"), size=rng.integers(5, 400))) for _ in range(300)]
    stream = encode_documents(words, ByteTokenizer())
    return MLMData(tokenizer=ByteTokenizer(), train=stream, validation=stream, seq_len=64,
                   global_batch=16, eval_batches=2, seed=seed, process_index=process_index,
                   process_count=process_count, dataset_key="synthetic")


def _within(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_masking_rates_are_15_percent_and_80_10_10():
    data = _mlm_data()
    tok = data.tokenizer
    special = {tok.pad_id, tok.bos_id, tok.eos_id, tok.mask_id, tok.cls_id, tok.sep_id}
    eligible = selected = masked = kept = randomized = 0
    for step in range(150):  # 150 x 16 x 64 = 153,600 positions
        b = data.batch(step)
        ordinary = ~np.isin(b["targets"], list(special))
        sel = b["weights"] == 1.0
        assert not (sel & ~ordinary).any()  # specials are never selected
        eligible += ordinary.sum()
        selected += sel.sum()
        masked += (sel & (b["inputs"] == tok.mask_id)).sum()
        kept += (sel & (b["inputs"] == b["targets"])).sum()
        randomized += (sel & (b["inputs"] != tok.mask_id) & (b["inputs"] != b["targets"])).sum()
        assert (b["inputs"][~sel] == b["targets"][~sel]).all()  # unselected are untouched
    assert _within(selected, eligible, MASK_RATE)
    # a random replacement equals the original with probability 1 / (ordinary ids)
    n_ordinary = tok.vocab_size - len(special)
    assert _within(masked, selected, 0.8)
    assert _within(kept, selected, 0.1 + 0.1 / n_ordinary)
    assert _within(randomized, selected, 0.1 * (1 - 1 / n_ordinary))


def test_random_replacements_are_ordinary_tokens():
    data = _mlm_data()
    tok = data.tokenizer
    b = data.batch(0)
    assert b["inputs"].max() < tok.vocab_size
    replaced = (b["weights"] == 1) & (b["inputs"] != b["targets"])
    assert not np.isin(b["inputs"][replaced], [tok.pad_id, tok.bos_id, tok.eos_id]).any()


def test_masked_batch_is_pure_and_independent_of_process_count():
    whole = _mlm_data().batch(7)
    again = _mlm_data().batch(7)
    halves = [_mlm_data(p, 2).batch(7) for p in range(2)]
    for key in whole:
        np.testing.assert_array_equal(whole[key], again[key])
        np.testing.assert_array_equal(whole[key], np.concatenate([h[key] for h in halves]))
    assert not np.array_equal(_mlm_data(seed=1).batch(7)["inputs"], whole["inputs"])


def test_mlm_batch_keys_match_the_bert_model():
    b = _mlm_data().batch(0)
    assert set(b) == {"inputs", "targets", "weights", "type_ids", "positions", "segment_ids"}
    assert all(v.shape == (16, 64) for v in b.values())
    assert (b["type_ids"] == 0).all() and b["weights"].dtype == np.float32


def test_tokenizer_without_mask_piece_is_an_error():
    tok = ByteTokenizer()
    tok.mask_id = None
    stream = encode_documents(["abc"] * 50, tok)
    with pytest.raises(DataError, match=r"no \[MASK\] piece"):
        MLMData(tokenizer=tok, train=stream, validation=stream, seq_len=8, global_batch=4,
                eval_batches=1, seed=0, process_index=0, process_count=1, dataset_key="x")
