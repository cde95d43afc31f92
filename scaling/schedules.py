"""Learning-rate schedules: warmup-cosine (GPT-3 §B) and inverse square root (Vaswani et al.
2017 §5.3). `optim.schedule` picks one; its allowed values are `SCHEDULES`."""

from __future__ import annotations

from scaling.config import OptimConfig

SCHEDULES = ("cosine", "rsqrt", "linear_decay")  # optim.schedule


def rsqrt_schedule(peak: float, warmup: int):
    """Vaswani et al. 2017 §5.3: lr(s) = d^-0.5 · min(s^-0.5, s · w^-1.5) for step s >= 1,
    written with its peak lr(w) = (d·w)^-0.5 as the parameter: lr(s) = peak · min(√(w/s),
    s/w). The optimizer's count starts at 0 for step 1."""
    import jax.numpy as jnp

    w = max(warmup, 1)

    def lr(count):
        s = jnp.asarray(count, jnp.float32) + 1.0
        return peak * jnp.minimum(jnp.sqrt(w / s), s / w)

    return lr


def schedule(optim: OptimConfig, total_steps: int):
    """optim.schedule: `cosine` = linear warmup to `lr`, then cosine decay to
    `min_lr_ratio · lr` at `total_steps` (GPT-3 §B: down to 10% of the peak); `rsqrt` = the
    Transformer's warmup then inverse square root (`rsqrt_schedule`); `linear_decay` =
    linear warmup, then linear decay to `min_lr_ratio · lr` (the fine-tuning recipes)."""
    import optax  # lazy: config validation reads SCHEDULES without JAX

    if optim.schedule == "rsqrt":
        return rsqrt_schedule(optim.lr, optim.warmup_steps)
    warmup = min(optim.warmup_steps, max(total_steps - 1, 0))
    if optim.schedule == "linear_decay":  # BERT §A.3, GPT-1 §4.1 fine-tuning
        return optax.join_schedules([
            optax.linear_schedule(0.0, optim.lr, max(warmup, 1)),
            optax.linear_schedule(optim.lr, optim.lr * optim.min_lr_ratio,
                                  max(total_steps - warmup, 1))], [warmup])
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=optim.lr, warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1), end_value=optim.lr * optim.min_lr_ratio)
