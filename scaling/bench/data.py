"""`scaling bench data`: input-pipeline throughput beside the tokens/s one training step
consumes (never run in CI)."""

from __future__ import annotations

from scaling.bench.train import time_train_steps
from scaling.config import Config
from scaling.families import objective_of


def bench_data(config: Config, steps: int = 20) -> int:
    """Print input-pipeline tokens/s next to the tokens/s one training step consumes."""
    from scaling.data.bench import measure_throughput

    pipe = measure_throughput(objective_of(config).load_data(config), steps)
    timing = time_train_steps(config, steps=max(3, steps // 4), warmup=1)
    train = config.train.global_batch * config.seq_len / timing["step_s"]
    print(f"preset {config.name}, data {config.data.source}: pipeline {pipe:,.0f} tokens/s; "
          f"training consumes {train:,.0f} tokens/s; headroom {pipe / train:.1f}x")
    return 0
