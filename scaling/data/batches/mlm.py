"""Masked-LM batches for BERT (Devlin et al. 2019, §3.1 "Task #1: Masked LM").

Legend: L rows in this process's batch, T = seq_len.

Rows are packed exactly as for the causal LM (scaling/data/batches/packing.py): each document is
`[bos] tokens eos`, rows may hold several documents, and `segment_ids` keep attention inside a
document. There is no next-sentence prediction here (RoBERTa, Liu et al. 2019 §4.2, found it
does not help); the BERT model's NSP loss is skipped when a batch has no `nsp_labels`. With
`data.nsp=true`, sentence pairs with NSP labels come from scaling/data/batches/nsp.py
instead, masked by `mask_tokens` below.

Masking: every position holding an ordinary token (not pad/bos/eos/[MASK]/[CLS]/[SEP]) is
selected independently with probability MASK_RATE = 15%. A selected token is replaced by
[MASK] with probability 80%, by a uniformly drawn ordinary token with probability 10%, and
left unchanged with probability 10%. `targets` holds the original tokens and `weights` (the
MLM loss mask) is 1.0 exactly at the selected positions. The draw for each row is seeded by
(data seed, split, global row index), so a global batch does not depend on the process count.
"""

from __future__ import annotations

import numpy as np

from scaling.data.batches.lm import LMData
from scaling.data.batches.loader import derive_seed
from scaling.data.batches.packing import pack_rows
from scaling.data.tokenizers import Tokenizer
from scaling.errors import DataError

MASK_RATE = 0.15  # BERT §3.1
MASK_TOKEN_PROB, RANDOM_TOKEN_PROB = 0.8, 0.1  # the remaining 10% keep the original token


def special_ids(tokenizer: Tokenizer) -> np.ndarray:
    """Ids that are never selected for masking and never drawn as random replacements."""
    ids = (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.mask_id,
           tokenizer.cls_id, tokenizer.sep_id)
    return np.array(sorted({i for i in ids if i is not None}), np.int32)


def masking_ids(tokenizer: Tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """(special ids, ordinary ids) of a tokenizer that can feed BERT; DataError without [MASK]."""
    if tokenizer.mask_id is None:
        raise DataError(
            "the tokenizer has no [MASK] piece, so it cannot feed BERT; train one "
            "(data.tokenizer=sentencepiece) or use data.tokenizer=byte"
        )
    special = special_ids(tokenizer)
    return special, np.setdiff1d(np.arange(tokenizer.vocab_size), special)


def mask_tokens(tokens: np.ndarray, rng: np.random.Generator, mask_id: int,
                ordinary: np.ndarray, special: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BERT masking of one row `tokens` [T]: (masked inputs [T], weights [T] float32)."""
    T = tokens.shape[0]
    selected = (rng.random(T) < MASK_RATE) & ~np.isin(tokens, special)  # [T]
    action = rng.random(T)  # [T]: < 0.8 mask, < 0.9 random, else keep
    replace_mask = selected & (action < MASK_TOKEN_PROB)
    replace_random = selected & (action >= MASK_TOKEN_PROB) & (
        action < MASK_TOKEN_PROB + RANDOM_TOKEN_PROB)
    inputs = np.where(replace_mask, mask_id, tokens)  # [T]
    inputs = np.where(replace_random, rng.choice(ordinary, size=T), inputs)  # [T]
    return inputs.astype(np.int32), selected.astype(np.float32)


class MLMData(LMData):
    """Packed, masked BERT batches: `inputs`, `targets`, `weights` (the MLM loss mask),
    `type_ids` (all 0: one sentence type), `positions`, `segment_ids`; each [L, T]."""

    def __init__(self, **kwargs):
        self._special, self._ordinary = masking_ids(kwargs["tokenizer"])
        super().__init__(**kwargs)

    def rows(self, split: str, items: np.ndarray, sample_ids: np.ndarray) -> dict[str, np.ndarray]:
        lm = pack_rows(self.stream(split), items, self.seq_len)
        seed = derive_seed(self.seed, f"mlm-{split}")
        inputs, weights = np.empty_like(lm["inputs"]), np.empty_like(lm["weights"])
        for j, tokens in enumerate(lm["inputs"]):
            rng = np.random.default_rng([seed, int(sample_ids[j])])
            inputs[j], weights[j] = mask_tokens(
                tokens, rng, self.tokenizer.mask_id, self._ordinary, self._special)
        return {
            "inputs": inputs,  # [L, T]
            "targets": lm["inputs"],  # [L, T] the unmasked tokens
            "weights": weights,  # [L, T] 1.0 where a token was selected
            "type_ids": np.zeros_like(lm["inputs"]),  # [L, T]
            "positions": lm["positions"],  # [L, T]
            "segment_ids": lm["segment_ids"],  # [L, T]
        }
