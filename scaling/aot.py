"""Ahead-of-time compilation for a TPU or GPU topology this machine does not have.

The real train step of a config is lowered for a TPU slice (`v5p:8x8x8`, several slices
joined over the data-centre network; needs `pip install "jax[tpu]"`, no TPU) or for GPU
nodes (`h100:1x4x8`, scaling/gpu_topology.py; needs `scaling[gpu]`, no GPU), abstractly
(nothing is allocated), and compiled with the run's compiler options, so an out-of-memory
layout is caught before a pod is rented. Without a topology it compiles for this host's
devices. Any family: the batch comes from its objective's schema. `scaling bench compile`
(scaling/bench/compile.py) reports the memory and fused attention calls of the result.
"""

from __future__ import annotations

import os
import re
import time

import jax

from scaling import sharding
from scaling.config import Config
from scaling.errors import UserError
from scaling.families import batch_fields
from scaling.families.schema import abstract_batch
from scaling.gpu_topology import gpu_devices, is_gpu_topology, memory_bytes
from scaling.platform import resolve
from scaling.validate import validate

# HBM per chip (GiB), matched against device_kind (lower-cased).
HBM_GIB = (("v6", 32), ("v5p", 95), ("v5 lite", 16), ("v5e", 16), ("v5", 95), ("v4", 32))
# A fused attention kernel in compiled HLO: cuDNN's flash attention (forward and backward
# custom calls) or a Mosaic (Pallas TPU) kernel, of which the step has only splash's.
FUSED_CALL = re.compile(r'custom_call_target="(__cudnn\$fmha[^"]*|tpu_custom_call)"')


def fused_attention_calls(hlo_text: str) -> int:
    """Fused attention call sites in a compiled step's HLO text (a scanned stack's loop body
    counts once, however many layers run it)."""
    return len(FUSED_CALL.findall(hlo_text))


def target_devices(topology: str | None, slices: int = 1):
    """Compile-only devices of a GPU (h100:1x1x8) or TPU (v5p:2x2x2) topology; this host's
    devices when None."""
    if not topology:
        return jax.devices()
    if is_gpu_topology(topology):
        if slices > 1:
            raise UserError(f"--slices {slices}: GPU topologies give the nodes in the name "
                            f"instead (h100:1x4x8 is four 8-GPU nodes)")
        return gpu_devices(topology)
    return topology_devices(topology, slices)


def topology_devices(topology: str, slices: int = 1):
    """Compile-only devices of a TPU topology such as 'v5p:8x8x8' (needs libtpu); `slices`
    copies of it joined over the data-centre network (a multi-slice job: each device reports
    its slice_index, so the mesh is a hybrid one)."""
    from jax.experimental import topologies

    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")  # no real workers to find
    # compile-only: no TPU is claimed, so another process holding libtpu's lockfile is fine
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    try:
        extra = {"num_slices": slices} if slices > 1 else {}
        return topologies.get_topology_desc(topology, "tpu", **extra).devices
    except Exception as e:  # libtpu missing or a topology name it does not know
        raise UserError(f"cannot describe TPU topology {topology!r} ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:160]}); install jax[tpu] and use names "
                        f"like v5p:2x2x2 or v4:4x4x4") from None


def hbm_bytes(device, topology: str | None = None) -> float | None:
    """Memory of one device: a GPU's from its target description, a TPU chip's by kind."""
    if is_gpu_topology(topology):
        return memory_bytes(topology.split(":", 1)[0].lower())
    kind = device.device_kind.lower()
    for key, gib in HBM_GIB:
        if key in kind:
            return gib * 2**30
    return None


def lower_for(config: Config, devices):
    """(lowered train step, mesh, resolved config) of `config` on `devices`, abstract:
    nothing is allocated. `auto` dtype and attention are resolved for the devices' platform
    (a TPU topology gets bfloat16 even when this host is a CPU)."""
    from scaling.rng import dropout_key
    from scaling.train.optimizer import make_optimizer
    from scaling.train.state import sharded_abstract_state
    from scaling.train.step import compile_steps

    config = resolve(validate(config), devices)
    mesh = sharding.make_mesh(config.mesh, devices, config=config)
    tx = make_optimizer(config.optim, config.train.steps)
    state, shardings = sharded_abstract_state(config, tx, mesh)
    fields = batch_fields(config)
    shs = sharding.batch_shardings(fields, mesh)
    batch = {name: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=shs[name]) for name, a in
             abstract_batch(fields, config.train.global_batch, config.seq_len).items()}
    key = jax.ShapeDtypeStruct((), dropout_key(config.train).dtype,
                               sharding=sharding.replicated(mesh))
    train_fn, _ = compile_steps(config, tx, mesh, shardings)
    return train_fn.lower(state, batch, key), mesh, config


def compile_for(config: Config, devices):
    """The compiled train step of `config` on `devices` (abstract: nothing is allocated)."""
    lowered, mesh, resolved = lower_for(config, devices)
    return compile_lowered(lowered, resolved, devices), mesh


def compile_lowered(lowered, resolved: Config, devices, lower_s: float = 0.0):
    """lowered.compile() with the run's compiler options (scaling/rng.py); XLA's
    out-of-memory verdict for the target (it refuses to compile a step whose temporaries
    exceed HBM) becomes one line saying so."""
    from scaling.rng import compiler_options

    t = time.perf_counter()
    try:
        return lowered.compile(compiler_options=compiler_options(resolved.train,
                                                                 devices[0].platform) or None)
    except jax.errors.JaxRuntimeError as e:
        if "RESOURCE_EXHAUSTED" not in str(e):
            raise
        detail = str(e).split("RESOURCE_EXHAUSTED:", 1)[1].strip().splitlines()[0]
        raise UserError(f"does NOT fit (XLA, after {lower_s:.1f} s to lower and "
                        f"{time.perf_counter() - t:.1f} s compiling): {detail}; use more "
                        f"microbatches, model.remat=full or a mesh with more batch ways") \
            from None
