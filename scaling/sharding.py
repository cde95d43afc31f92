"""Mesh construction and the one table mapping logical axis names to mesh axes.

Weights carry logical names (models/*.py); this file alone decides where each name lives.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import linen as nn
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from scaling.config import ConfigError, MeshConfig

MESH_AXES = ("data", "fsdp", "tensor")

# Logical name -> mesh axis (or axes). Megatron-style tensor parallelism splits heads, MLP
# width and vocab; FSDP (ZeRO-3) splits the model width of every weight; the batch is split
# over both data and fsdp.
RULES = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("embed", "fsdp"),
    ("act_embed", None),  # activations' model width stays whole (the batch already uses fsdp)
    ("heads", "tensor"),
    ("kv", None),
    ("mlp", "tensor"),
    ("vocab", "tensor"),
    ("layers", None),
    ("norm", None),
)


def mesh_shape(mesh: MeshConfig, n_devices: int) -> tuple[int, int, int]:
    """Resolve the one -1 axis, or fail naming the sizes when the product is not the count."""
    sizes = [mesh.data, mesh.fsdp, mesh.tensor]
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if n_devices % known:
            raise ConfigError(
                f"mesh data={mesh.data} fsdp={mesh.fsdp} tensor={mesh.tensor}: the fixed axes "
                f"({known}) do not divide the {n_devices} available devices")
        sizes[sizes.index(-1)] = n_devices // known
    if math.prod(sizes) != n_devices:
        raise ConfigError(
            f"mesh data={sizes[0]} fsdp={sizes[1]} tensor={sizes[2]} needs {math.prod(sizes)} "
            f"devices but {n_devices} are available; set mesh sizes whose product is "
            f"{n_devices} (one may be -1)")
    return tuple(sizes)


def check_divisible(config, shape: tuple[int, int, int]) -> None:
    """Every sharded dimension must split evenly over its mesh axis; say which one does not."""
    data, fsdp, tensor = shape
    m, t = config.model, config.train
    checks = [
        ("model.n_heads", m.n_heads, "mesh.tensor", tensor),
        ("model.d_ff", m.d_ff, "mesh.tensor", tensor),
        ("the padded vocabulary", m.padded_vocab, "mesh.tensor", tensor),
        ("model.d_model", m.d_model, "mesh.fsdp", fsdp),
        ("train.global_batch / train.microbatches", t.global_batch // t.microbatches,
         "mesh.data x mesh.fsdp", data * fsdp),
    ]
    for name, value, axis, size in checks:
        if value % size:
            raise ConfigError(f"{name}={value} does not split evenly over {axis}={size}; "
                              f"choose sizes so that {size} divides {value}")


def make_mesh(mesh: MeshConfig, devices=None, config=None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (default: all), with Auto axis types.
    With `config`, also check that its model and batch split evenly over the mesh."""
    devices = jax.devices() if devices is None else list(devices)
    shape = mesh_shape(mesh, len(devices))
    if config is not None:
        check_divisible(config, shape)
    if devices == jax.devices():
        return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3)
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES,
                axis_types=(AxisType.Auto,) * 3)


def logical_shardings(boxed_tree, mesh: Mesh):
    """NamedShardings for a tree of `nn.LogicallyPartitioned` values (e.g. an eval_shape'd init);
    leaves without annotations (step counters, optimizer counts) are replicated."""
    specs = nn.get_partition_spec(boxed_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, RULES)


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Leading batch axis split over data × fsdp, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(("data", "fsdp"), *([None] * (ndim - 1))))


def batch_shardings(fields, mesh: Mesh) -> dict:
    """name -> sharding for every field of a batch schema (scaling/families/registry.py):
    rows over data × fsdp, whatever the field's rank."""
    return {f.name: batch_sharding(mesh, f.rank) for f in fields}


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def axis_rules():
    """Context manager making the logical names resolvable while tracing the model."""
    return nn.logical_axis_rules(RULES)
