"""Batched, sharded translation for one encoder-decoder run (the training loop's BLEU hook,
`scaling translate` and `scaling eval --tasks bleu` all use it).

Letter legend: B sources in a batch, S source length (= model.max_len), L output length.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from scaling import sharding
from scaling.errors import UserError
from scaling.families import family_of


class Translator:
    """Batched, sharded decoding for one run: parameters stay as trained (rows of a batch
    over data × fsdp); one compilation per (beam, alpha, extra length)."""

    def __init__(self, config, mesh, tokenizer, param_shardings):
        family = family_of(config.model)
        if family.translator is None:
            raise UserError(f"{config.name} is a {family.name}-family run, which does not "
                            f"translate; translation needs an encoder-decoder (encdec) run")
        self.config, self.mesh, self.tok = config, mesh, tokenizer
        self.search = family.translator
        self.param_shardings = param_shardings
        self.rows = sharding.batch_ways(mesh)  # a batch splits over these
        self.bos = tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.pad_id

    def encode(self, lines: list[str], warn=None) -> list[np.ndarray]:
        """`ids eos` per line, cut (with a warning naming the line) to model.max_len."""
        S = self.config.model.max_len
        out = []
        for i, ids in enumerate(self.tok.encode_batch(lines)):
            if len(ids) + 1 > S:
                if warn:
                    warn(i, len(ids))
                ids = ids[:S - 1]
            out.append(np.concatenate([ids, [self.tok.eos_id]]).astype(np.int32))
        return out

    @functools.lru_cache(maxsize=8)  # noqa: B019  (one Translator per command or run)
    def _compiled(self, beam: int, alpha: float, max_len: int):
        model = self.config.model
        rows = sharding.batch_sharding(self.mesh, 2)

        def run(params, src, valid, limits):
            with sharding.axis_rules(), jax.sharding.use_abstract_mesh(self.mesh.abstract_mesh):
                return self.search(model, params, src, valid, limits, beam=beam,
                                   max_len=max_len, bos=self.bos, eos=self.tok.eos_id,
                                   alpha=alpha)

        return jax.jit(run, in_shardings=(self.param_shardings, rows, rows,
                                          sharding.batch_sharding(self.mesh, 1)),
                       out_shardings=rows)

    def translate(self, params, sources: list[np.ndarray], *, beam: int = 4,
                  alpha: float = 0.6, max_extra: int = 50, batch: int = 64) -> list[str]:
        """Translations of encoded sources, in order; each stops at eos or after its
        length + max_extra tokens (and within model.max_len)."""
        S = self.config.model.max_len
        B = -(-max(batch, 1) // self.rows) * self.rows  # a multiple of the batch shards
        fn = self._compiled(beam, float(alpha), S)
        out = []
        for start in range(0, len(sources), B):
            chunk = sources[start:start + B]
            src = np.zeros((B, S), np.int32)
            valid = np.zeros((B, S), bool)
            limits = np.ones((B,), np.int32)
            for j, ids in enumerate(chunk):
                src[j, :len(ids)], valid[j, :len(ids)] = ids, True
                limits[j] = min(len(ids) + max_extra, S)
            src[len(chunk):, 0], valid[len(chunk):, 0] = self.tok.eos_id, True  # filler rows
            ids = np.asarray(fn(params, src, valid, limits))  # [B, L]
            for row in ids[:len(chunk)]:
                row = list(row)
                if self.tok.eos_id in row:
                    row = row[:row.index(self.tok.eos_id)]
                out.append(self.tok.decode([t for t in row if t > 0]))
        return out
