"""Sequence-to-sequence batches for the encoder-decoder Transformer (Vaswani et al. 2017).

Legend: L examples in this process's batch, T = seq_len (encoder and decoder alike).

One example per row, no packing. The source is `ids eos`, the target `ids eos`, each cut to
T tokens (a cut sequence loses its eos) and padded with pad_id. The decoder reads the target
shifted right behind bos (teacher forcing): decoder_inputs = [bos] + target[:-1].
Segment ids are 1 on real tokens and 0 on padding; positions count from 0; `weights` is 1.0
on every real target token (eos included) and 0 on padding.

Translation datasets named `tfds:NAME/X-Y` (wmt14_translate/de-en) translate Y -> X when
data.input_field/data.target_field are unset: en -> de, as in Vaswani et al. §6.1.
"""

from __future__ import annotations

import numpy as np

from scaling.data.batches.loader import BatchData
from scaling.errors import DataError


def pad_rows(seqs: list[np.ndarray], T: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """seqs cut to T and right-padded: (ids [L, T] int32, real-token mask [L, T] bool)."""
    ids = np.full((len(seqs), T), pad_id, np.int32)  # [L, T]
    real = np.zeros((len(seqs), T), bool)  # [L, T]
    for j, s in enumerate(seqs):
        n = min(len(s), T)
        ids[j, :n], real[j, :n] = s[:n], True
    return ids, real


def seq2seq_batch(sources: list[np.ndarray], targets: list[np.ndarray], T: int, pad_id: int,
                  bos_id: int, eos_id: int) -> dict[str, np.ndarray]:
    """The encoder-decoder batch of token-id lists (no eos yet); every array is [L, T]."""
    eos = np.array([eos_id], np.int32)
    src, src_real = pad_rows([np.concatenate([s, eos]) for s in sources], T, pad_id)
    tgt, tgt_real = pad_rows([np.concatenate([t, eos]) for t in targets], T, pad_id)
    dec = np.concatenate([np.full((len(targets), 1), bos_id, np.int32), tgt[:, :-1]], axis=1)
    dec = np.where(tgt_real, dec, pad_id)  # [L, T]
    arange = np.arange(T, dtype=np.int32)[None, :]  # [1, T]
    return {
        "inputs": src,  # [L, T]
        "input_positions": np.where(src_real, arange, 0),  # [L, T]
        "input_segment_ids": src_real.astype(np.int32),  # [L, T]
        "decoder_inputs": dec.astype(np.int32),  # [L, T]
        "positions": np.where(tgt_real, arange, 0),  # [L, T]
        "segment_ids": tgt_real.astype(np.int32),  # [L, T]
        "targets": tgt,  # [L, T]
        "weights": tgt_real.astype(np.float32),  # [L, T]
    }


def seq2seq_fields(spec, input_field: str, target_field: str) -> tuple[str, str]:
    """(input, target) record fields of a DataSpec: as configured, else inferred from a TFDS
    "X-Y" config name (de-en translates en -> de)."""
    if input_field and target_field:
        return input_field, target_field
    if spec.kind in ("cldr", "tsv"):
        from scaling.data.sources.parallel import seq2seq_defaults

        return seq2seq_defaults(spec, input_field, target_field)
    pair = spec.tfds_config.split("-") if spec.tfds_config else []
    if len(pair) == 2 and all(pair) and not (input_field or target_field):
        return pair[1], pair[0]
    raise DataError(
        f"--data {str(spec)!r}: set both data.input_field and data.target_field (the record fields "
        f"holding the source and the target text)"
    )


class Seq2SeqData(BatchData):
    """Encoder-decoder batches over a corpus of (source, target) records; see module doc."""

    def __init__(self, *, corpus, input_field: str, target_field: str, seq_len: int, **kwargs):
        super().__init__(**kwargs)
        self.corpus, self.seq_len = corpus, seq_len
        self.fields = (input_field, target_field)
        sizes = {s: corpus.num_documents(s) for s in ("train", "validation")}
        if sizes["train"] < self.global_batch or sizes["validation"] < 1:
            raise DataError(
                f"{corpus.spec}: {sizes['train']} train / {sizes['validation']} validation "
                f"examples; need at least train.global_batch={self.global_batch} and 1"
            )
        self.train_examples = sizes["train"]
        self._setup(sizes["train"], sizes["validation"])

    def make_batch(self, split: str, step: int, items: np.ndarray) -> dict[str, np.ndarray]:
        del step
        source = self.corpus.splits[split]
        records = [source[int(i)] for i in items]
        texts = [[self.corpus.field(r, f, f"{split} record") for r in records]
                 for f in self.fields]
        sources, targets = (self.tokenizer.encode_batch(t) for t in texts)
        tok = self.tokenizer
        bos = tok.bos_id if tok.bos_id is not None else tok.pad_id
        return seq2seq_batch(sources, targets, self.seq_len, tok.pad_id, bos, tok.eos_id)
