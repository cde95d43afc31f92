"""`scaling bench compile`: the real train step compiled ahead of time for a TPU or GPU
topology this machine does not have (or for this host), its per-device memory against the
chip's HBM and its fused attention calls (scaling/aot.py compiles; never run in CI)."""

from __future__ import annotations

import time

import jax

from scaling.aot import (
    compile_lowered,
    fused_attention_calls,
    hbm_bytes,
    lower_for,
    target_devices,
)
from scaling.config import Config
from scaling.errors import UserError
from scaling.platform import attention_line
from scaling.validate import validate


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
    compiled = compile_lowered(lowered, resolved, devices, t1 - t0)
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
