"""Worker for test_data_multiprocess.py: assemble global batches on one of N processes.

usage: python mp_batches.py PORT NUM_PROCESSES PROCESS_ID STORE OUT.npz
Each process simulates 8 / N CPU devices; the mesh spans all 8. Each process also writes
OUT.PROCESS_ID.json: the train row ids it read and the store shards it opened.
"""

import json
import os
import sys

port, nproc, pid, store, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={8 // nproc}"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

if nproc > 1:
    jax.distributed.initialize(f"localhost:{port}", num_processes=nproc, process_id=pid,
                               initialization_timeout=60)

from scaling import sharding  # noqa: E402
from scaling.config import MeshConfig, apply_overrides  # noqa: E402
from scaling.data import load_lm_data  # noqa: E402
from scaling.presets import get_preset  # noqa: E402
from scaling.train.loop import global_batch  # noqa: E402

config = apply_overrides(get_preset("gpt-tiny"), [
    f"data.source=store:{store}", "model.vocab_size=384",
    "model.max_len=32", "train.global_batch=16"])
mesh = sharding.make_mesh(MeshConfig(2, 2, 2))
data = load_lm_data(config)
assert data.local_batch == 16 // nproc
arrays, rows = {}, []
for step in range(3):
    rows += [int(r) for r in data._train_items[step]]  # this process's row ids
    batch = global_batch(data.batch(step), mesh)
    for key, value in batch.items():
        arrays[f"{step}/{key}"] = multihost_utils.process_allgather(value, tiled=True)
with open(f"{out}.{pid}.json", "w") as f:
    json.dump({"rows": rows, "opened": sorted(data._train.opened)}, f)
if pid == 0:
    np.savez(out, **arrays)
