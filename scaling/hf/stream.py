"""HF tensors into our sharded parameters and back, one tensor at a time.

Import: every leaf of our parameter tree is made by `jax.make_array_from_callback` on its
sharding; the callback builds only the requested block from the memory-mapped HF files
(a scanned leaf [L, ...] layer by layer), so host memory holds the arrays being built and
nothing twice. Export: each HF tensor is computed from the leaves it needs, fetched from the
devices one at a time, and written in safetensors shards of at most SHARD_BYTES.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from scaling.checkpoint.compat import flat_shapes
from scaling.config import Config
from scaling.errors import UserError
from scaling.hf.mapping import Architecture, Reader, Rules, dry_run, layer_key, leaf_maker

SHARD_BYTES = 2 * 1024**3  # HF's own default shard size is 5 GB; smaller keeps memory low


def _flat(tree) -> dict[str, object]:
    paths = list(flat_shapes(tree))
    return dict(zip(paths, jax.tree.leaves(tree), strict=True))


def plan(config: Config, arch: Architecture, tensors):
    """(mesh, parameter targets, rules) after a dry run of every rule (UserError on a
    missing tensor or a shape that does not fit); nothing read or written yet."""
    from scaling.checkpoint.load import inference_mesh, param_targets

    resolved, mesh = inference_mesh(config)  # the run's own mesh when it fits this host
    targets, _ = param_targets(resolved, mesh)
    rules = arch.rules(config.model)
    dry_run(rules, {p: t.shape for p, t in _flat(targets).items()}, tensors)
    return mesh, targets, rules


def build_state(targets, rules: Rules, tensors) -> dict:
    """{step, params, skipped}: the parameters built shard by shard on their devices."""
    reader = Reader(tensors)
    paths = list(flat_shapes(targets))

    def build(path, target):
        make = leaf_maker(path, target.shape, rules)
        return jax.make_array_from_callback(target.shape, target.sharding,
                                            lambda index: make(reader, index))

    leaves = [build(p, t) for p, t in zip(paths, jax.tree.leaves(targets), strict=True)]
    params = jax.tree.unflatten(jax.tree.structure(targets), leaves)
    zero = jnp.zeros((), jnp.int32)
    return {"step": zero, "params": params, "skipped": zero}


class Ours:
    """Our parameters by path, fetched to the host one leaf (or one layer) at a time:
    ours(path) for a leaf outside the stack, ours(key, l) for layer l's."""

    def __init__(self, params):
        self.flat = _flat(params)
        self.stack = {p.split("/")[0] for p in self.flat if layer_key(p)[0]}
        self.scanned = any(layer_key(p)[0] and layer_key(p)[1] is None for p in self.flat)

    def __call__(self, path: str, layer: int | None = None) -> np.ndarray:
        if layer is None:
            return np.asarray(self.flat[path], np.float32)
        (stack,) = self.stack
        if self.scanned:
            return np.asarray(self.flat[f"{stack}/layers/{path}"][layer], np.float32)
        return np.asarray(self.flat[f"{stack}/layer_{layer}/{path}"], np.float32)


def save_safetensors(tensors: dict, path: str) -> None:
    """safetensors' save_file, its write failures (a full disk, a read-only directory: a
    SafetensorError wrapping the OS error, not an OSError) as one UserError naming `path`."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    try:
        save_file(tensors, path, metadata={"format": "pt"})
    except (SafetensorError, OSError) as e:
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise UserError(f"cannot write {path}: {reason}") from None


def write_safetensors(tensors: dict, ours: Ours, directory: str) -> list[str]:
    """Evaluate each HF tensor of `tensors` (name -> fn(ours)) and write them into
    model.safetensors, or numbered shards with model.safetensors.index.json when they exceed
    SHARD_BYTES; only the shard being filled is held in memory. Returns the files written."""

    current: dict[str, np.ndarray] = {}
    size, total, files = 0, 0, []

    def flush():
        name = f"shard-{len(files):05d}.safetensors"
        save_safetensors(current, os.path.join(directory, name))
        files.append((name, list(current)))
        current.clear()

    for name, fn in tensors.items():
        x = np.ascontiguousarray(fn(ours), np.float32)
        if size and size + x.nbytes > SHARD_BYTES:
            flush()
            size = 0
        current[name] = x
        size, total = size + x.nbytes, total + x.nbytes
    flush()
    if len(files) == 1:
        os.rename(os.path.join(directory, files[0][0]),
                  os.path.join(directory, "model.safetensors"))
        return ["model.safetensors"]
    weight_map, names = {}, []
    for i, (tmp_name, keys) in enumerate(files):
        final = f"model-{i + 1:05d}-of-{len(files):05d}.safetensors"
        os.rename(os.path.join(directory, tmp_name), os.path.join(directory, final))
        weight_map.update({k: final for k in keys})
        names.append(final)
    with open(os.path.join(directory, "model.safetensors.index.json"), "w",
              encoding="utf-8") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return [*names, "model.safetensors.index.json"]
