"""`scaling translate`: one source a line in, one translation a line out, in order, with a
trained encoder-decoder run; `Translator`, the batched, sharded decoding it shares with the
BLEU evaluator (scaling/eval/bleu.py: in training and `scaling eval --tasks bleu`).

Letter legend: B sources in a batch, S source length (= model.max_len), L output length.
"""

from __future__ import annotations

import functools
import sys

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


def load_translator(workdir: str):
    """(Translator, params, config, corpus, metadata) for a run directory."""
    from scaling.checkpoint.load import load_run, run_corpus
    from scaling.data.api import seq2seq_fields_of

    run = load_run(workdir, check=_can_translate)
    corpus, tokenizer = run_corpus(run, seq2seq_fields_of(run.config))
    translator = Translator(run.config, run.mesh, tokenizer, run.shardings)
    return translator, run.params, run.config, corpus, run.meta


def _can_translate(config, workdir: str) -> None:
    """What translation refuses (load_run's `check`): a family that does not translate."""
    if family_of(config.model).translator is None:
        raise UserError(f"{workdir} is a {config.model.family}-family run, which does not "
                        f"translate; translation needs an encoder-decoder (encdec) run")


def read_lines(path: str) -> list[str]:
    """The lines of `path` ('-' = stdin), strict UTF-8; one clear error otherwise."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(path, "rb") as f:
                data = f.read()
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"--input {path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"--input {path}: is a directory, not a file of sentences") from None
    except OSError as e:
        raise UserError(f"--input {path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"--input {path}: not UTF-8 text ({e.reason} at byte {e.start})") \
            from None
    return text.splitlines()


def translate_command(workdir: str, path: str, beam: int, alpha: float, max_extra: int,
                      batch: int) -> int:
    """`scaling translate`: one translation a line on stdout, in input order; an empty line
    translates to an empty line."""
    if beam < 1 or batch < 1 or max_extra < 0 or not alpha >= 0:
        raise UserError("--beam and --batch must be >= 1, --max-extra-len and --alpha >= 0")
    lines = read_lines(path)
    translator, params, config, _, _ = load_translator(workdir)
    todo = [i for i, line in enumerate(lines) if line.strip()]

    def warn(j, n):
        print(f"scaling: warning: line {todo[j] + 1}: {n} source tokens cut to "
              f"model.max_len={config.model.max_len}", file=sys.stderr)

    sources = translator.encode([lines[i] for i in todo], warn)
    done = dict(zip(todo, translator.translate(params, sources, beam=beam, alpha=alpha,
                                               max_extra=max_extra, batch=batch), strict=True))
    for i in range(len(lines)):
        print(done.get(i, ""))
    return 0
