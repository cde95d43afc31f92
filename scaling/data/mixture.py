"""Weighted data mixtures: `--data "mix:0.7*embedded,0.3*text:PATH"`.

Legend: B = global_batch, K sources, w [K] normalized weights, P processes, L = B / P rows
per process, T = seq_len, S steps.

Global batch s is a pure function of (seed, s); nothing is counted across steps:
  1. counts: source i gets c_i = floor(B w_i) rows plus 0 or 1 of the R = B - sum(c) left
     over, allocated by systematic sampling: with u(s) in [0, 1) a hash of (seed, s) and F the
     cumulative fractional parts B w - c (F_0 = 0, F_K = R), source i gets one more row iff an
     integer j has F_{i-1} <= u + j < F_i. So E[count_i] = B w_i exactly, and every batch is
     within one row of it.
  2. positions: the B source labels in a random order (a generator seeded by (seed, s)).
  3. rows: the r-th position (in order) of source i takes sample s * q_i + r of source i's
     own infinite sequence of shuffled epochs (as scaling/data/batches/loader.py), q_i = ceil(B w_i)
     the most rows source i can get in one step: a source skips at most one sample a step.
Process p reads positions [p L, (p + 1) L) of that global batch, so the batch does not
depend on the process count, and resuming at step s is `iterator(s)`.

Tokens seen by source i before step s is T * sum_{t<s} count_i(t), a vectorized sum of hashes.

Tokenizer: `data.tokenizer`, one for all sources; a trained one (`sentencepiece`) is trained
on the FIRST source's train split, so list the source whose text is most representative first.
Each source is a token store (scaling/data/store/); the other sources' stores are built with
the first one's tokenizer, and a `store:` source must have been prepared with it.
Evaluation: each source's own `train.eval_batches` validation batches; `eval_loss/<name>`
each (names: `DataSpec.names`) and `eval_loss` = sum_i w_i eval_loss_i.
"""

from __future__ import annotations

import dataclasses
import sys

import grain
import numpy as np

from scaling import storage
from scaling.data.batches.loader import BatchData, derive_seed
from scaling.errors import DataError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def uniform(seed: int, steps: np.ndarray) -> np.ndarray:
    """u(s) in [0, 1) for each step in `steps` [S]: splitmix64 of (seed, s), vectorized."""
    with np.errstate(over="ignore"):
        z = np.asarray(steps).astype(np.uint64) + np.uint64(seed) * _GOLDEN + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


class Allocation:
    """How many rows of each global batch each source gets (steps 1 and 2 above)."""

    def __init__(self, weights: tuple[float, ...], global_batch: int, seed: int):
        self.B, self.seed = global_batch, seed
        exact = np.round(global_batch * np.asarray(weights, np.float64), 9)  # [K]
        self.base = np.floor(exact).astype(np.int64)  # [K]
        frac = np.round(exact - self.base, 9)  # [K] in [0, 1)
        remainder = global_batch - int(self.base.sum())
        self.edges = np.concatenate([[0.0], np.cumsum(frac)])  # [K+1]
        self.edges[-1] = remainder
        self.quota = self.base + (frac > 0)  # [K] q_i: the most rows in one step

    def counts(self, steps: np.ndarray) -> np.ndarray:
        """[S, K] rows of each source in each of `steps` [S]; each row sums to B."""
        u = uniform(self.seed, steps)[:, None]  # [S, 1]
        crossed = np.ceil(self.edges[None, :] - u)  # [S, K+1]: integers j with u + j < edge
        return self.base[None, :] + np.diff(crossed, axis=1).astype(np.int64)

    def labels(self, step: int) -> np.ndarray:
        """[B] the source of each position of global batch `step`."""
        counts = self.counts(np.array([step]))[0]
        rng = np.random.default_rng([self.seed, step])
        return rng.permutation(np.repeat(np.arange(len(counts)), counts))


class MixtureData(BatchData):
    """Batches mixed from several packed sources (LMData or MLMData, same tokenizer and
    seq_len); each source is built with this process's slice for its validation batches."""

    def __init__(self, sources: dict, weights: tuple[float, ...], *, seed: int,
                 global_batch: int, process_index: int, process_count: int, eval_batches: int):
        first = next(iter(sources.values()))
        key = ",".join(f"{w:.6g}*{s.dataset_key}"
                       for w, s in zip(weights, sources.values(), strict=True))
        super().__init__(tokenizer=first.tokenizer, global_batch=global_batch,
                         eval_batches=eval_batches, seed=seed, process_index=process_index,
                         process_count=process_count, dataset_key=f"mix({key})")
        self.sources, self.names, self.weights = sources, tuple(sources), tuple(weights)
        self.seq_len = first.seq_len
        self.alloc = Allocation(self.weights, global_batch, derive_seed(seed, "mix"))
        self._samples = [  # sample j of source i -> its train row id
            grain.MapDataset.range(s.train_rows).shuffle(seed=derive_seed(s.seed, "train"))
            .repeat() for s in sources.values()]
        self._batches = grain.MapDataset.range(sys.maxsize).map_with_index(
            lambda step, _: self.make_batch("train", step, None))
        self._seen = (0, np.zeros(len(sources), np.int64))  # (step, rows before it) cache

    def make_batch(self, split: str, step: int, items) -> dict[str, np.ndarray]:
        """This process's rows [L, T] of global training batch `step` (`items` unused)."""
        del split, items
        labels = self.alloc.labels(step)  # [B]
        lo = self.process_index * self.local_batch
        out: dict[str, np.ndarray] = {}
        for i, source in enumerate(self.sources.values()):
            where = np.flatnonzero(labels == i)  # [count_i] global positions, ascending
            mine = (where >= lo) & (where < lo + self.local_batch)
            if not mine.any():
                continue
            ranks = np.flatnonzero(mine)  # r: rank of each of my positions among source i's
            rows = np.array([self._samples[i][int(j)]
                             for j in step * int(self.alloc.quota[i]) + ranks])
            part = source.rows("train", rows, step * self.global_batch + where[mine])
            for key, value in part.items():
                if key not in out:
                    out[key] = np.empty((self.local_batch, *value.shape[1:]), value.dtype)
                out[key][where[mine] - lo] = value
        return out

    def eval_sets(self) -> dict[str, tuple[float, list]]:
        """{name: (weight, its validation batches)}."""
        return {n: (w, s.eval_batches())
                for (n, s), w in zip(self.sources.items(), self.weights, strict=True)}

    def eval_batches(self) -> list[dict[str, np.ndarray]]:
        return [b for _, batches in self.eval_sets().values() for b in batches]

    def rows_before(self, step: int) -> np.ndarray:
        """[K] rows each source contributed to global batches 0 .. step - 1."""
        done, rows = self._seen if self._seen[0] <= step else (0, np.zeros_like(self._seen[1]))
        rows = rows + self.alloc.counts(np.arange(done, step)).sum(axis=0)
        self._seen = (step, rows)
        return rows

    def log_row(self, start: int, stop: int) -> dict[str, float]:
        """`share/<name>`: each source's share of the rows of batches start .. stop - 1;
        `tokens_seen/<name>`: its tokens (positions) in batches 0 .. stop - 1."""
        start = min(start, stop - 1)
        window = self.alloc.counts(np.arange(start, stop)).sum(axis=0)  # [K]
        seen = self.rows_before(stop) * self.seq_len
        total = max(int(window.sum()), 1)
        return {**{f"share/{n}": float(c) / total for n, c in zip(self.names, window, strict=True)},
                **{f"tokens_seen/{n}": int(t) for n, t in zip(self.names, seen, strict=True)}}

    def state_tag(self) -> dict:
        return {**super().state_tag(), "seq_len": self.seq_len}


def load_mixture(cls, config, process_index: int, process_count: int, builder_index: int,
                 progress: bool = True) -> MixtureData:
    """The mixture of `config.data.spec` (kind "mix"), each source a `cls` (LMData/MLMData)
    pipeline over its own token store, all with one tokenizer (see the module docstring)."""
    from scaling.data.store.for_run import run_store
    from scaling.data.store.tokenizer_ref import SP_FILE

    d, spec = config.data, config.data.spec
    t = config.train
    stores, tokenizer = [], None
    for name, (_, part) in zip(spec.names, spec.parts, strict=True):
        data = dataclasses.replace(d, source=str(part))
        if tokenizer is not None and part.kind != "store":  # the first source's tokenizer
            shared = {"sentencepiece": storage.join(stores[0].path, "tokenizer", SP_FILE),
                      "hf": "hf:" + storage.join(stores[0].path, "tokenizer")}
            data = dataclasses.replace(data, tokenizer=shared.get(tokenizer.kind, "byte"))
        store = run_store(data, config.model.vocab_size, d.vocab_size, False, builder_index,
                          progress)
        if tokenizer is not None and store.tokenizer.hash != tokenizer.hash:
            raise DataError(f"--data {d.source!r}: source {name} ({part}) has another "
                            f"tokenizer than the first source; a mixture needs one tokenizer "
                            f"(prepare its stores with data.tokenizer= the first one's)")
        tokenizer = tokenizer or store.tokenizer
        stores.append(store)
    sources = {
        name: cls(train=store.train, validation=store.validation, seq_len=config.seq_len,
                  tokenizer=tokenizer, global_batch=t.global_batch,
                  eval_batches=t.eval_batches, seed=derive_seed(d.seed, f"mix/{name}"),
                  process_index=process_index, process_count=process_count,
                  dataset_key=f"{store.key}/{tokenizer.hash[:16]}")
        for name, store in zip(spec.names, stores, strict=True)
    }
    return MixtureData(sources, tuple(w for w, _ in spec.parts), seed=d.seed,
                       global_batch=t.global_batch, process_index=process_index,
                       process_count=process_count, eval_batches=t.eval_batches)
