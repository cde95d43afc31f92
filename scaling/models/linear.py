"""The one dense layer: an einsum against a kernel with logical axis names, plus a bias."""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn


class Linear(nn.Module):
    """y = einsum(spec, x, kernel) + bias. `spec` names the contraction, e.g. "BTD,DNH->BTNH";
    the kernel has `kernel_shape` with logical `kernel_axes`, the bias the output's trailing
    dims (`bias_axes`), or none when `bias_axes` is None."""

    spec: str
    kernel_shape: tuple[int, ...]
    kernel_axes: tuple[str | None, ...]
    bias_axes: tuple[str | None, ...] | None = None
    init_std: float = 0.02
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(nn.initializers.normal(self.init_std), self.kernel_axes),
            self.kernel_shape)
        y = jnp.einsum(self.spec, x.astype(self.dtype), kernel.astype(self.dtype))
        if self.bias_axes is None:
            return y
        n = len(self.bias_axes)
        bias = self.param(
            "bias", nn.with_logical_partitioning(nn.initializers.zeros, self.bias_axes),
            y.shape[-n:])
        return y + bias.astype(self.dtype)
