"""Ahead-of-time compilation for a TPU or GPU topology this machine does not have.

`scaling bench compile --config gpt3-175b --topology v5p:8x8x8` lowers and compiles the real
train step for that slice (`--slices 2 --set mesh.replica=2`: two such slices joined over
the data-centre network) (needs `pip install "jax[tpu]"`, no TPU) and reports per-device
memory, so an out-of-memory layout is caught before a pod is rented; `--topology h100:1x4x8`
does the same for four 8-GPU nodes (scaling/gpu_topology.py; needs `scaling[gpu]`, no GPU).
It also reports the attention path and how many fused attention kernels the compiled step
calls. Without `--topology` it compiles for this host's devices. Any family: the batch
comes from its objective's schema.
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
from scaling.platform import attention_line, resolve
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
    return _compile(lowered, resolved, devices), mesh


def _compile(lowered, resolved: Config, devices, lower_s: float = 0.0):
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


def bench_compile(config: Config, topology: str | None, slices: int = 1) -> int:
    """Print per-device memory of the train step compiled for `topology` (a TPU slice;
    `slices` of them for a multi-slice job), or for this host's devices when `topology` is
    None."""
    if slices < 1 or (slices > 1 and not topology):
        raise UserError(f"--slices {slices}: give a positive count, with --topology (the "
                        f"topology of each slice)")
    devices = target_devices(topology, slices)
    t0 = time.perf_counter()
    lowered, mesh, resolved = lower_for(config, devices)
    t1 = time.perf_counter()
    where = (f"{slices} x {topology}" if slices > 1 else topology) if topology else \
        f"this host ({jax.default_backend()})"
    print(attention_line(validate(config), devices), flush=True)
    print(f"{config.name} on {where} ({len(devices)} x {devices[0].device_kind}), mesh "
          f"{dict(mesh.shape)}, batch {config.train.global_batch} x {config.seq_len}, remat "
          f"{config.model.remat}, dtype {resolved.model.dtype}, attention "
          f"{resolved.model.attention}, scan_layers {resolved.model.scan_layers}, scan_unroll "
          f"{resolved.model.scan_unroll}, dropout {resolved.model.dropout} "
          f"({resolved.train.dropout_rng})", flush=True)
    if config.mesh.stage > 1:
        from scaling.train.report import pipeline_report

        print(pipeline_report(config), flush=True)
    compiled = _compile(lowered, resolved, devices, t1 - t0)
    t2 = time.perf_counter()
    mem = compiled.memory_analysis()
    gib = 2**30
    args, temp = mem.argument_size_in_bytes, mem.temp_size_in_bytes
    outs, alias = mem.output_size_in_bytes, mem.alias_size_in_bytes
    total = args + temp + outs - alias
    cap = hbm_bytes(devices[0], topology)
    print(f"trace + lower {t1 - t0:.1f} s; compile {t2 - t1:.1f} s; total {t2 - t0:.1f} s")
    print(f"per device: arguments {args / gib:.2f} GiB, temporaries {temp / gib:.2f} GiB, "
          f"outputs {outs / gib:.2f} GiB (aliased {alias / gib:.2f}), total {total / gib:.2f} GiB")
    if cap:
        verdict = "fits" if total <= cap else "does NOT fit"
        print(f"HBM {cap / gib:.0f} GiB per chip: {verdict} ({total / cap:.0%})")
    calls = fused_attention_calls(compiled.as_text())
    print(f"attention: {resolved.model.attention}, {calls} fused attention calls")
    return 0
