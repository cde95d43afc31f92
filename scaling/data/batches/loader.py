"""LM batches with grain: global batch s is a pure function of (seed, s, dataset).

Legend: B = global_batch, P = process count, L = B / P rows per process, T = seq_len.

Sample k of the infinite training sequence is row `shuffle_e(k mod n)` of epoch e = k // n,
where n is the number of packed rows and every epoch is shuffled with its own seed (grain
derives seed + e). Global batch s holds samples [s*B, (s+1)*B); process p reads samples
[s*B + p*L, s*B + (p+1)*L). No iterator state is needed for exactness: resuming at step s
is `iterator(s)`, and the iterator's state is just the next step.
"""

from __future__ import annotations

import functools
import hashlib
import warnings

import grain
import numpy as np

from scaling.data.tokenizers import Tokenizer
from scaling.errors import DataError


def derive_seed(seed: int, purpose: str) -> int:
    """A 32-bit seed for `purpose`, so that streams of one run share no seed."""
    digest = hashlib.sha256(f"{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def row_batches(
    num_rows: int, seed: int, local_batch: int, process_index: int, process_count: int
) -> grain.MapDataset:
    """grain MapDataset: element s = this process's row ids [L] of global batch s."""
    samples = grain.MapDataset.range(num_rows).shuffle(seed=seed).repeat()  # sample -> row id
    local = samples.batch(local_batch)  # local batch m = samples [m*L, (m+1)*L)
    return local[process_index::process_count]  # global batch s, process p -> m = s*P + p


class BatchData:
    """Batches that are a pure function of (seed, step): the part every pipeline shares.

    A subclass calls `_setup(train_items, validation_items)` with the number of items (rows,
    examples) of each split and implements `make_batch(split, step, items)`, where items [L]
    are this process's item indices of global batch `step`.
    """

    tokenizer: Tokenizer
    _INT_KEYS = ("inputs", "targets", "decoder_inputs")  # ids a device gather would clamp

    def __init__(self, *, tokenizer: Tokenizer, global_batch: int, eval_batches: int, seed: int,
                 process_index: int, process_count: int, dataset_key: str):
        if global_batch % process_count:
            raise DataError(
                f"train.global_batch={global_batch} is not divisible by the {process_count} "
                f"processes; choose a multiple of {process_count}"
            )
        self.tokenizer, self.global_batch, self.seed = tokenizer, global_batch, seed
        self.local_batch = global_batch // process_count
        self.process_index, self.process_count = process_index, process_count
        self.dataset_key, self._num_eval = dataset_key, eval_batches
        self._eval_cache: list[dict[str, np.ndarray]] | None = None

    def _setup(self, train_items: int, validation_items: int) -> None:
        def items(n: int, split: str) -> grain.MapDataset:
            return row_batches(n, derive_seed(self.seed, split), self.local_batch,
                               self.process_index, self.process_count)

        self._train_items = items(train_items, "train")  # step -> this process's item ids
        self._batches = self._train_items.map_with_index(
            functools.partial(self.make_batch, "train"))
        self._eval_items = items(validation_items, "validation")

    def make_batch(self, split: str, step: int, items: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's rows of global training batch `step`: arrays [L, ...]."""
        return self.checked(self._batches[step])

    def iterator(self, start_step: int = 0, prefetch: int = 2) -> LMIterator:
        """Batches start_step, start_step + 1, ... prefetched by grain in a background thread."""
        return LMIterator(self, start_step, prefetch)

    def eval_batches(self) -> list[dict[str, np.ndarray]]:
        """`train.eval_batches` fixed validation batches (shuffled once with a fixed seed;
        a small validation split repeats)."""
        if self._eval_cache is None:
            self._eval_cache = [
                self.checked(self.make_batch("validation", i, self._eval_items[i]))
                for i in range(self._num_eval)
            ]
        return self._eval_cache

    def checked(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`batch`, after checking on the host that every id is in the vocabulary
        (a device gather would clamp an out-of-range id silently)."""
        vocab = self.tokenizer.vocab_size
        for key in self._INT_KEYS:
            ids = batch.get(key)
            if ids is not None and ids.size and (ids.min() < 0 or ids.max() >= vocab):
                bad = ids[(ids < 0) | (ids >= vocab)][0]
                raise DataError(
                    f"token id {bad} in batch {key!r} is outside the vocabulary [0, {vocab}); "
                    f"the token cache does not match the tokenizer: delete it and rebuild"
                )
        return batch

    def state_tag(self) -> dict:
        """What a saved iterator position refers to."""
        return {"seed": self.seed, "dataset": self.dataset_key, "global_batch": self.global_batch}


class LMIterator:
    """Training batches from a step on; `get_state()` is JSON-able and names the next step."""

    def __init__(self, data: BatchData, step: int, prefetch: int):
        self._data, self._step, self._prefetch = data, int(step), prefetch
        self._it = None  # the grain iterator, started on first use

    def __iter__(self) -> LMIterator:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        if self._it is None:
            options = grain.ReadOptions(num_threads=1, prefetch_buffer_size=self._prefetch)
            self._it = iter(self._data._batches[self._step :].to_iter_dataset(options))
        batch = self._data.checked(next(self._it))
        self._step += 1
        return batch

    @property
    def step(self) -> int:
        """The step of the batch `next()` returns."""
        return self._step

    def get_state(self) -> dict:
        return {"step": self._step, **self._data.state_tag()}

    def set_state(self, state: dict) -> None:
        """Continue at `state["step"]`; warns if the state was saved for other data."""
        if "step" not in state:
            raise DataError(f"data iterator state {state!r} has no 'step'; not from this loader")
        changed = {k: (state[k], v) for k, v in self._data.state_tag().items()
                   if k in state and state[k] != v}
        if changed:
            warnings.warn(
                f"data iterator state was saved for other data ({changed}, as saved vs now); "
                f"continuing at step {state['step']}, but batches differ from the original run",
                stacklevel=2,
            )
        self._step, self._it = int(state["step"]), None
