"""`scaling bench`: training-step and input-pipeline throughput (never run in CI).

The train benchmark feeds synthetic uniform-random tokens so it needs no dataset (and runs on
accelerator images without tfds/grain); it measures the compiled step alone.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from scaling import sharding
from scaling.config import Config
from scaling.laws.accounting import flops_per_token
from scaling.metrics import device_peak_flops, host_matmul_flops
from scaling.models.layers import dtype_of


def synthetic_batch(config: Config, rng: np.random.Generator) -> dict:
    """One global batch of random tokens, full-length single-document rows."""
    B, T, V = config.train.global_batch, config.seq_len, config.model.vocab_size
    ids = rng.integers(0, V, (B, T + 1), dtype=np.int32)
    return {"inputs": ids[:, :-1], "targets": ids[:, 1:],
            "positions": np.broadcast_to(np.arange(T, dtype=np.int32), (B, T)).copy(),
            "segment_ids": np.ones((B, T), np.int32), "weights": np.ones((B, T), np.float32)}


def time_train_steps(config: Config, steps: int, warmup: int) -> dict:
    """Seconds per step of the compiled train step on the current devices."""
    from scaling.train.optimizer import make_optimizer
    from scaling.train.state import init_state
    from scaling.train.step import compile_steps

    mesh = sharding.make_mesh(config.mesh, config=config)
    tx = make_optimizer(config.optim, config.train.steps)
    state, shardings = init_state(config, tx, mesh, jax.random.key(0))
    train_fn, _ = compile_steps(config, tx, mesh, shardings)
    batch = jax.device_put(synthetic_batch(config, np.random.default_rng(0)),
                           sharding.batch_sharding(mesh, 1))
    key = jax.random.key(1)
    t = time.perf_counter()
    state, m = train_fn(state, batch, key)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t
    for _ in range(warmup):
        state, m = train_fn(state, batch, key)
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(steps):
        state, m = train_fn(state, batch, key)
    jax.block_until_ready(m)
    step_s = (time.perf_counter() - t) / steps
    return {"compile_s": compile_s, "step_s": step_s, "loss": float(m["loss"])}


def bench_train(config: Config, steps: int = 20, warmup: int = 3) -> int:
    """Print tokens/s, achieved FLOP/s and MFU of the train step for `config`."""
    timing = time_train_steps(config, steps, warmup)
    tokens = config.train.global_batch * config.seq_len
    tps = tokens / timing["step_s"]
    fpt = flops_per_token(config.model, config.seq_len)["total"]
    achieved = tps * fpt
    dev = jax.devices()[0]
    peak = device_peak_flops(dev)
    print(f"preset {config.name}: batch {config.train.global_batch} x {config.seq_len} tokens, "
          f"dtype {dtype_of(config.model).name}, attention {config.model.attention}, remat "
          f"{config.model.remat}, on {jax.device_count()} x {dev.device_kind}")
    print(f"compile {timing['compile_s']:.1f} s; step {timing['step_s'] * 1e3:.1f} ms; "
          f"{tps:,.0f} tokens/s; {achieved / 1e12:.3f} TFLOP/s achieved "
          f"({fpt:.4g} FLOP/token: 6N + causal-halved attention)")
    if peak is not None:
        print(f"MFU {achieved / (peak * jax.device_count()):.1%} of {peak / 1e12:.0f} TFLOP/s "
              f"bf16 peak per device")
    else:
        host = host_matmul_flops()
        print(f"host float32 matmul {host / 1e9:.1f} GFLOP/s; the step reaches "
              f"{achieved / host:.1%} of it (CPU has no published peak)")
    return 0


def bench_data(config: Config, steps: int = 20) -> int:
    """Print input-pipeline tokens/s next to the tokens/s one training step consumes."""
    from scaling.data import measure_throughput

    pipe = measure_throughput(config, steps)
    timing = time_train_steps(config, steps=max(3, steps // 4), warmup=1)
    train = config.train.global_batch * config.seq_len / timing["step_s"]
    print(f"preset {config.name}, data {config.data.source}: pipeline {pipe:,.0f} tokens/s; "
          f"training consumes {train:,.0f} tokens/s; headroom {pipe / train:.1f}x")
    return 0
