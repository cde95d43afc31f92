"""The token store a training run reads: `--data store:STORE`, or built in the cache from
any other pretraining source by the same pipeline as `scaling prepare` (DirectRunner).

Only process 0 of a job builds; the others wait for its manifest (`WAIT_SECONDS`, then one
line saying so). The cache entry is `<cache>/stores/<kind>-<build key>`: the key covers the
source's files, the tokenizer and the layouts, so an edited file builds a new store.
"""

from __future__ import annotations

import os
import time

from scaling import storage
from scaling.data.store import layout
from scaling.data.store.reader import Store, open_store
from scaling.errors import DataError

WAIT_SECONDS = float(os.environ.get("SCALING_STORE_WAIT", 6 * 3600))


def run_store(data, model_vocab_size: int, vocab_size: int, sentences: bool,
              process_index: int, progress: bool = True, workers: int | None = None) -> Store:
    """The opened store of `data` (a DataConfig), built first if it is not a store: spec."""
    if data.spec.kind == "store":
        store = open_store(data.spec.arg, data.max_documents)
    else:
        from scaling.data.cache import cache_root
        from scaling.data.store.prepare import build, make_plan

        plan = make_plan(data, model_vocab_size, vocab_size, sentences)
        path = storage.join(str(cache_root(data.cache_dir)), "stores",
                            f"{data.spec.kind}-{plan.build_key[:24]}")
        if process_index == 0:
            build(plan, path, workers=workers, progress=progress)
        else:
            _wait_for(path, process_index)
        store = open_store(path, data.max_documents)
    check_vocab(store, model_vocab_size)
    return store


def check_vocab(store: Store, model_vocab_size: int) -> None:
    size = store.tokenizer.vocab_size
    if size > model_vocab_size:
        raise DataError(f"{store.path}: the store's tokenizer has {size} ids, more than "
                        f"model.vocab_size={model_vocab_size}; raise model.vocab_size")


def _wait_for(path: str, process_index: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    manifest = storage.join(path, layout.MANIFEST)
    while not storage.path(manifest).is_file():
        if time.monotonic() > deadline:
            raise DataError(f"process {process_index}: the token store {path} did not appear "
                            f"within {WAIT_SECONDS:.0f} s; process 0 builds it: see its log "
                            f"(or set SCALING_STORE_WAIT)")
        time.sleep(0.5)
