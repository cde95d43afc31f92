"""`scaling bench train`: training-step throughput and MFU (never run in CI).

It feeds a synthetic batch built from the objective's schema (uniform-random tokens), so it
needs no dataset (and runs on accelerator images without tfds/grain); it measures the
compiled step alone, for any family. `train_runner` is also the timed step of `bench data`,
`bench torch` and benchmarks/.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from scaling import sharding
from scaling.config import Config
from scaling.errors import UserError
from scaling.families import batch_fields, flops_per_token, schema
from scaling.metrics import device_peak_flops, host_matmul_flops
from scaling.platform import attention_line, resolve
from scaling.validate import validate


def synthetic_batch(config: Config, rng: np.random.Generator) -> dict:
    """One global batch of `config`'s objective schema: uniform-random tokens, full-length
    single-document rows (no dataset needed)."""
    return schema.synthetic_batch(batch_fields(config), config.train.global_batch,
                                  config.seq_len, config.model.vocab_size, rng)


def train_runner(config: Config, warmup: int) -> dict:
    """Our compiled train step on the current devices, compiled and warmed up: "run" (steps ->
    seconds), "batch" (the host batch), "compile_s", "config" (resolved), "devices", "loss"."""
    from scaling.rng import DROPOUT_RNGS
    from scaling.train.optimizer import make_optimizer
    from scaling.train.state import init_state
    from scaling.train.step import compile_steps

    mesh = sharding.make_mesh(config.mesh, config=config)
    print(attention_line(config, mesh.devices.flat), flush=True)
    config = resolve(config, mesh.devices.flat)
    tx = make_optimizer(config.optim, config.train.steps)
    state, shardings = init_state(config, tx, mesh, jax.random.key(0))
    train_fn, _ = compile_steps(config, tx, mesh, shardings)
    host_batch = synthetic_batch(config, np.random.default_rng(0))
    batch = jax.device_put(host_batch, sharding.batch_shardings(batch_fields(config), mesh))
    key = jax.random.key(1, impl=DROPOUT_RNGS[config.train.dropout_rng])
    holder = {}
    t = time.perf_counter()
    holder["state"], holder["m"] = train_fn(state, batch, key)
    jax.block_until_ready(holder["m"])
    compile_s = time.perf_counter() - t

    def run(steps: int) -> float:
        t = time.perf_counter()
        for _ in range(steps):
            holder["state"], holder["m"] = train_fn(holder["state"], batch, key)
        jax.block_until_ready(holder["m"])
        return time.perf_counter() - t

    if warmup:
        run(warmup)
    hlo = lambda: train_fn.lower(holder["state"], batch, key).compile().as_text()  # noqa: E731
    return {"run": run, "batch": host_batch, "compile_s": compile_s, "config": config, "hlo": hlo,
            "devices": mesh.devices.size, "loss": lambda: float(holder["m"]["loss"])}


def time_train_steps(config: Config, steps: int, warmup: int) -> dict:
    """Seconds per step of the compiled train step on the current devices."""
    runner = train_runner(config, warmup)
    step_s = runner["run"](steps) / steps
    return {"compile_s": runner["compile_s"], "step_s": step_s, "loss": runner["loss"](),
            "config": runner["config"]}


def palm_flops_per_token(config: Config) -> float:
    """Training FLOPs per token in PaLM's convention (Chowdhery et al. 2022, App. B):
    6N + 12·L·D·T, N our dense matmul count, the attention term not halved for causal masks."""
    from scaling.families import family_of

    layers = sum(s.n_layers for s in family_of(config.model).layout(config.model).stacks)
    dense = flops_per_token(config.model, config.seq_len)["dense"]
    return dense + 12 * config.model.d_model * layers * config.seq_len


def bench_train(config: Config, steps: int = 20, warmup: int = 3) -> int:
    """Print tokens/s, achieved FLOP/s and MFU of the train step for `config` (any family:
    the batch is synthetic, from its objective's schema)."""
    if steps < 1 or warmup < 0:
        raise UserError(f"--steps {steps} --warmup {warmup}: need at least one timed step and "
                        f"a non-negative warmup")
    timing = time_train_steps(validate(config), steps, warmup)
    resolved = timing["config"]
    tokens = config.train.global_batch * config.seq_len
    tps = tokens / timing["step_s"]
    fpt = flops_per_token(config.model, config.seq_len)["total"]
    achieved = tps * fpt
    dev = jax.devices()[0]
    peak = device_peak_flops(dev)
    print(f"preset {config.name}: batch {config.train.global_batch} x {config.seq_len} tokens, "
          f"dtype {resolved.model.dtype}, attention {resolved.model.attention}, remat "
          f"{config.model.remat}, on {jax.device_count()} x {dev.device_kind}")
    print(f"compile {timing['compile_s']:.1f} s; step {timing['step_s'] * 1e3:.1f} ms; "
          f"{tps:,.0f} tokens/s; {achieved / 1e12:.3f} TFLOP/s achieved "
          f"({fpt:.4g} FLOP/token: 6N + attention, causal layers halved)")
    if config.mesh.stage > 1:
        from scaling.train.report import pipeline_report

        print(pipeline_report(config))
    if peak is not None:
        palm = tps * palm_flops_per_token(config)
        print(f"MFU {achieved / (peak * jax.device_count()):.1%} of {peak / 1e12:.0f} TFLOP/s "
              f"bf16 peak per device; PaLM convention (6N + 12·L·D·T, attention not halved) "
              f"{palm / (peak * jax.device_count()):.1%}")
        stats = dev.memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            print(f"peak memory {stats['peak_bytes_in_use'] / 2**30:.2f} GiB on device 0")
    else:
        host = host_matmul_flops()
        print(f"host float32 matmul {host / 1e9:.1f} GFLOP/s; the step reaches "
              f"{achieved / host:.1%} of it (CPU has no published peak)")
    return 0
