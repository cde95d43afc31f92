"""Mesh construction and the one table mapping logical axis names to mesh axes.

Weights carry logical names (models/*.py); this file alone decides where each name lives.

Mesh axes, outermost first: replica (one per slice of a multi-slice job: data parallelism
over the data-centre network, DCN), stage (pipeline stages; only in meshes with
mesh.stage > 1), data, fsdp, tensor (inside a slice, over ICI). On devices that report
several slices the mesh is a hybrid one (jax's create_hybrid_device_mesh: replica over DCN,
the rest inside each slice); otherwise the devices are reshaped in order.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import linen as nn
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from scaling.config import ConfigError, MeshConfig
from scaling.models.pipeline import STAGE_AXIS  # pipeline stages: stacked layers split over it

MESH_AXES = ("replica", "data", "fsdp", "tensor")  # every mesh; "stage" joins when > 1
BATCH_AXES = ("replica", "data", "fsdp")  # the mesh axes a batch's rows are split over

# Logical name -> mesh axis (or axes). Megatron-style tensor parallelism splits heads, MLP
# width and vocab; FSDP (ZeRO-3) splits the model width of every weight; the batch is split
# over replica, data and fsdp (replica is outermost, so gradients cross slices once a step).
# A pipelined mesh also splits the scanned layer axis over stage (`rules`).
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


def rules(mesh: Mesh | None = None) -> tuple:
    """RULES for `mesh`: with a stage axis, stacked layers are split over it (stage s holds
    layers s·L/S .. (s+1)·L/S - 1, the same arrays a non-pipelined mesh holds whole), and
    activations' rows outside the pipeline too (stage-major, as the pipeline's shard_map
    takes them: models/pipeline.py), so the embedding and head run on 1/S of them."""
    if mesh is None or STAGE_AXIS not in mesh.axis_names:
        return RULES
    split = {"layers": STAGE_AXIS, "batch": (STAGE_AXIS, *BATCH_AXES)}
    return tuple((name, split.get(name, axes)) for name, axes in RULES)


def stages(mesh) -> int:
    """Pipeline stages of a mesh (or abstract mesh): its stage axis size, 1 without one."""
    return dict(mesh.shape).get(STAGE_AXIS, 1) if mesh is not None else 1


def mesh_axes(mesh: MeshConfig, n_devices: int) -> dict[str, int]:
    """Axis name -> size, outermost first (replica, [stage], data, fsdp, tensor): the one -1
    axis resolved, or fail naming the sizes when the product is not the count. The stage axis
    is there only when mesh.stage > 1, so other meshes are exactly as before."""
    sizes = [mesh.data, mesh.fsdp, mesh.tensor]
    replica, stage = mesh.replica, mesh.stage
    if n_devices % replica:
        raise ConfigError(f"mesh.replica={replica} does not divide the {n_devices} available "
                          f"devices; use one replica per slice")
    if (n_devices // replica) % stage:
        raise ConfigError(f"mesh.stage={stage} does not divide the {n_devices // replica} "
                          f"devices of each of the {replica} replicas")
    per_stage = n_devices // replica // stage
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if per_stage % known:
            raise ConfigError(
                f"mesh data={mesh.data} fsdp={mesh.fsdp} tensor={mesh.tensor}: the fixed axes "
                f"({known}) do not divide the {per_stage} devices of each of the "
                f"{replica * stage} replicas x stages")
        sizes[sizes.index(-1)] = per_stage // known
    if replica * stage * math.prod(sizes) != n_devices:
        raise ConfigError(
            f"mesh replica={replica} stage={stage} data={sizes[0]} fsdp={sizes[1]} "
            f"tensor={sizes[2]} needs {replica * stage * math.prod(sizes)} devices but "
            f"{n_devices} are available; set mesh sizes whose product is {n_devices} (one of "
            f"data, fsdp, tensor may be -1)")
    axes = {"replica": replica}
    if stage > 1:
        axes[STAGE_AXIS] = stage
    return {**axes, "data": sizes[0], "fsdp": sizes[1], "tensor": sizes[2]}


def mesh_shape(mesh: MeshConfig, n_devices: int) -> tuple[int, int, int, int]:
    """(replica, data, fsdp, tensor) of `mesh_axes` (the stage axis left out)."""
    axes = mesh_axes(mesh, n_devices)
    return tuple(axes[a] for a in MESH_AXES)


def check_divisible(config, axes: dict[str, int]) -> None:
    """Every sharded dimension must split evenly over its mesh axis; say which one does not."""
    replica, data, fsdp, tensor = (axes[a] for a in MESH_AXES)
    stage = axes.get(STAGE_AXIS, 1)  # a pipeline splits each microbatch's rows over it too
    m, t = config.model, config.train
    checks = [
        ("model.n_heads", m.n_heads, "mesh.tensor", tensor),
        ("model.d_ff", m.d_ff, "mesh.tensor", tensor),
        ("the padded vocabulary", m.padded_vocab, "mesh.tensor", tensor),
        ("model.d_model", m.d_model, "mesh.fsdp", fsdp),
        ("train.global_batch / train.microbatches", t.global_batch // t.microbatches,
         "mesh.replica x mesh.data x mesh.fsdp" + (" x mesh.stage" if stage > 1 else ""),
         replica * data * fsdp * stage),
        ("model.n_layers", m.n_layers, "mesh.stage", stage),
    ]
    for name, value, axis, size in checks:
        if value % size:
            raise ConfigError(f"{name}={value} does not split evenly over {axis}={size}; "
                              f"choose sizes so that {size} divides {value}")


def make_mesh(mesh: MeshConfig, devices=None, config=None) -> Mesh:
    """A (replica, [stage], data, fsdp, tensor) mesh over `devices` (default: all), with Auto
    axis types; a hybrid (DCN x ICI) mesh when the devices report several slices. With
    `config`, also check that its model and batch split evenly over the mesh."""
    default = devices is None
    devices = jax.devices() if default else list(devices)
    axes = mesh_axes(mesh, len(devices))
    if config is not None:
        check_divisible(config, axes)
    names, shape = tuple(axes), tuple(axes.values())
    axis_types = (AxisType.Auto,) * len(names)
    slices = slice_count(devices)
    if slices > 1:
        return Mesh(hybrid_devices(shape, devices, slices), names, axis_types=axis_types)
    if default:
        return jax.make_mesh(shape, names, axis_types=axis_types)
    return Mesh(np.asarray(devices).reshape(shape), names, axis_types=axis_types)


def slice_count(devices) -> int:
    """How many slices `devices` span (devices without a `slice_index` are one slice)."""
    return len({getattr(d, "slice_index", 0) for d in devices})


def hybrid_devices(shape: tuple[int, ...], devices, slices: int) -> np.ndarray:
    """Devices [replica, ([stage,] data, fsdp, tensor)]: replica across slices (DCN), the
    other axes inside each slice (ICI), laid out by jax's create_hybrid_device_mesh."""
    from jax.experimental import mesh_utils

    if shape[0] != slices:
        raise ConfigError(f"the devices span {slices} slices but mesh.replica={shape[0]}; "
                          f"set mesh.replica={slices} (one replica per slice)")
    dcn = (slices,) + (1,) * (len(shape) - 1)
    return mesh_utils.create_hybrid_device_mesh((1, *shape[1:]), dcn, devices,
                                                allow_split_physical_axes=True)


def batch_ways(mesh: Mesh) -> int:
    """How many ways a batch's rows are split (replica x data x fsdp)."""
    return math.prod(mesh.shape[a] for a in BATCH_AXES)


def batch_share(mesh: Mesh, process_index: int | None = None) -> tuple[int, int]:
    """(index, count): the rows of every global batch that process `process_index` (default:
    this one) must load are block `index` of `count` equal blocks. Rows are split over
    replica × data × fsdp; processes whose devices differ only along stage or tensor hold the
    same rows, so they load the same block (a stage axis across hosts needs this)."""
    p = jax.process_index() if process_index is None else process_index
    names = list(mesh.axis_names)
    grid = np.moveaxis(np.asarray(mesh.devices), [names.index(a) for a in BATCH_AXES],
                       range(len(BATCH_AXES)))
    ways = math.prod(grid.shape[:len(BATCH_AXES)])
    shards = grid.reshape(ways, -1)  # [row block, devices holding it]
    mine = [i for i in range(ways) if any(d.process_index == p for d in shards[i])]
    n = len(mine)
    if not mine or mine != list(range(mine[0], mine[0] + n)) or mine[0] % n or ways % n:
        raise ConfigError(f"process {p} holds batch blocks {mine} of {ways} on this mesh, not "
                          f"one contiguous share; put the batch axes (replica, data, fsdp) "
                          f"across hosts in order")
    return mine[0] // n, ways // n


def logical_shardings(boxed_tree, mesh: Mesh):
    """NamedShardings for a tree of `nn.LogicallyPartitioned` values (e.g. an eval_shape'd init);
    leaves without annotations (step counters, optimizer counts) are replicated."""
    specs = nn.get_partition_spec(boxed_tree)
    return nn.logical_to_mesh_sharding(specs, mesh, rules(mesh))


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


def axis_rules(mesh: Mesh | None = None):
    """Context manager making the logical names resolvable while tracing the model (for
    `mesh`'s rules when given: a pipelined step needs them)."""
    return nn.logical_axis_rules(rules(mesh))
