"""Mesh construction and the one table mapping logical axis names to mesh axes.

Weights carry logical names (models/*.py); this file alone decides where each name lives.

Mesh axes, outermost first: replica (one per slice of a multi-slice job: data parallelism
over the data-centre network, DCN), data, fsdp, tensor (inside a slice, over ICI). On devices
that report several slices the mesh is a hybrid one (jax's create_hybrid_device_mesh: replica
over DCN, the rest inside each slice); otherwise the devices are reshaped in order.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import linen as nn
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from scaling.config import ConfigError, MeshConfig

MESH_AXES = ("replica", "data", "fsdp", "tensor")
BATCH_AXES = ("replica", "data", "fsdp")  # the mesh axes a batch's rows are split over

# Logical name -> mesh axis (or axes). Megatron-style tensor parallelism splits heads, MLP
# width and vocab; FSDP (ZeRO-3) splits the model width of every weight; the batch is split
# over replica, data and fsdp (replica is outermost, so gradients cross slices once a step).
RULES = (
    ("batch", BATCH_AXES),
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


def mesh_shape(mesh: MeshConfig, n_devices: int) -> tuple[int, int, int, int]:
    """(replica, data, fsdp, tensor): resolve the one -1 axis, or fail naming the sizes when
    the product is not the count."""
    sizes = [mesh.data, mesh.fsdp, mesh.tensor]
    replica = mesh.replica
    if n_devices % replica:
        raise ConfigError(f"mesh.replica={replica} does not divide the {n_devices} available "
                          f"devices; use one replica per slice")
    per_replica = n_devices // replica
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if per_replica % known:
            raise ConfigError(
                f"mesh data={mesh.data} fsdp={mesh.fsdp} tensor={mesh.tensor}: the fixed axes "
                f"({known}) do not divide the {per_replica} devices of each of the {replica} "
                f"replicas")
        sizes[sizes.index(-1)] = per_replica // known
    if replica * math.prod(sizes) != n_devices:
        raise ConfigError(
            f"mesh replica={replica} data={sizes[0]} fsdp={sizes[1]} tensor={sizes[2]} needs "
            f"{replica * math.prod(sizes)} devices but {n_devices} are available; set mesh "
            f"sizes whose product is {n_devices} (one of data, fsdp, tensor may be -1)")
    return (replica, *sizes)


def check_divisible(config, shape: tuple[int, int, int]) -> None:
    """Every sharded dimension must split evenly over its mesh axis; say which one does not."""
    replica, data, fsdp, tensor = shape
    m, t = config.model, config.train
    checks = [
        ("model.n_heads", m.n_heads, "mesh.tensor", tensor),
        ("model.d_ff", m.d_ff, "mesh.tensor", tensor),
        ("the padded vocabulary", m.padded_vocab, "mesh.tensor", tensor),
        ("model.d_model", m.d_model, "mesh.fsdp", fsdp),
        ("train.global_batch / train.microbatches", t.global_batch // t.microbatches,
         "mesh.replica x mesh.data x mesh.fsdp", replica * data * fsdp),
    ]
    for name, value, axis, size in checks:
        if value % size:
            raise ConfigError(f"{name}={value} does not split evenly over {axis}={size}; "
                              f"choose sizes so that {size} divides {value}")


def make_mesh(mesh: MeshConfig, devices=None, config=None) -> Mesh:
    """A (replica, data, fsdp, tensor) mesh over `devices` (default: all), with Auto axis
    types; a hybrid (DCN x ICI) mesh when the devices report several slices. With `config`,
    also check that its model and batch split evenly over the mesh."""
    default = devices is None
    devices = jax.devices() if default else list(devices)
    shape = mesh_shape(mesh, len(devices))
    if config is not None:
        check_divisible(config, shape)
    axis_types = (AxisType.Auto,) * len(MESH_AXES)
    slices = slice_count(devices)
    if slices > 1:
        return Mesh(hybrid_devices(shape, devices, slices), MESH_AXES, axis_types=axis_types)
    if default:
        return jax.make_mesh(shape, MESH_AXES, axis_types=axis_types)
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES, axis_types=axis_types)


def slice_count(devices) -> int:
    """How many slices `devices` span (devices without a `slice_index` are one slice)."""
    return len({getattr(d, "slice_index", 0) for d in devices})


def hybrid_devices(shape: tuple[int, ...], devices, slices: int) -> np.ndarray:
    """Devices [replica, data, fsdp, tensor]: replica across slices (DCN), the other axes
    inside each slice (ICI), laid out by jax's create_hybrid_device_mesh."""
    from jax.experimental import mesh_utils

    if shape[0] != slices:
        raise ConfigError(f"the devices span {slices} slices but mesh.replica={shape[0]}; "
                          f"set mesh.replica={slices} (one replica per slice)")
    return mesh_utils.create_hybrid_device_mesh((1, *shape[1:]), (slices, 1, 1, 1), devices,
                                                allow_split_physical_axes=True)


def batch_ways(mesh: Mesh) -> int:
    """How many ways a batch's rows are split (replica x data x fsdp)."""
    return math.prod(mesh.shape[a] for a in BATCH_AXES)


def logical_shardings(boxed_tree, mesh: Mesh):
    """NamedShardings for a tree of `nn.LogicallyPartitioned` values (e.g. an eval_shape'd init);
    leaves without annotations (step counters, optimizer counts) are replicated."""
    specs = nn.get_partition_spec(boxed_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, RULES)


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Leading batch axis split over replica × data × fsdp, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES, *([None] * (ndim - 1))))


def batch_shardings(fields, mesh: Mesh) -> dict:
    """name -> sharding for every field of a batch schema (scaling/families/registry.py):
    rows over replica × data × fsdp, whatever the field's rank."""
    return {f.name: batch_sharding(mesh, f.rank) for f in fields}


def whole_over_fsdp(shardings):
    """The same tree of NamedShardings with the fsdp axis dropped from every spec: each fsdp
    shard then holds whole weights (`train.fsdp_gather=step` gathers them so, once a step)."""
    def drop(entry):
        axes = entry if isinstance(entry, tuple) else (entry,)
        kept = tuple(a for a in axes if a is not None and a != "fsdp")
        return kept if len(kept) > 1 else (kept[0] if kept else None)

    return jax.tree.map(
        lambda s: NamedSharding(s.mesh, PartitionSpec(*(drop(e) for e in s.spec))), shardings)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def axis_rules():
    """Context manager making the logical names resolvable while tracing the model."""
    return nn.logical_axis_rules(RULES)
