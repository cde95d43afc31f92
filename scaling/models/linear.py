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
    def __call__(self, x=None):
        """y for x; with x None, (kernel, bias or None) cast to `dtype`, for a caller that
        fuses several projections into one matmul at trace time (the parameters are the same)."""
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(nn.initializers.normal(self.init_std), self.kernel_axes),
            self.kernel_shape)
        kernel = kernel.astype(self.dtype)
        if x is None:
            n = 0 if self.bias_axes is None else len(self.bias_axes)
            return kernel, self._bias(self.kernel_shape[-n:]) if n else None
        y = jnp.einsum(self.spec, x.astype(self.dtype), kernel)
        if self.bias_axes is None:
            return y
        return y + self._bias(y.shape[-len(self.bias_axes):])

    def _bias(self, shape):
        """The bias (the output's trailing `shape`, equal to the kernel's trailing dims)."""
        bias = self.param(
            "bias", nn.with_logical_partitioning(nn.initializers.zeros, self.bias_axes), shape)
        return bias.astype(self.dtype)
