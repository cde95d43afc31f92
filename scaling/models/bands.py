"""Which layers of a stack are locally banded: the one rule the stack and the FLOP accounting
share (GPT-3 §2.1 alternates dense and locally banded attention layers).

Pure NumPy on a few config fields, so the accounting imports it without building a model.
"""

from __future__ import annotations

import numpy as np


def banded_layers(local_window: int, local_every: int, n_layers: int) -> np.ndarray:
    """[L] bool: layer l (0-based, within its stack) is banded when a band is configured
    (`local_window` > 0) and l % local_every == 1; local_every = 1 bands every layer."""
    layers = np.arange(n_layers)
    if local_window <= 0:
        return np.zeros(n_layers, bool)
    if local_every == 1:
        return np.ones(n_layers, bool)
    return layers % local_every == 1


def band_widths(model, n_layers: int) -> np.ndarray:
    """[L] int32 band width per layer of `model` (a ModelConfig): r where banded, 0 = dense."""
    banded = banded_layers(model.local_window, model.local_every, n_layers)
    return np.where(banded, model.local_window, 0).astype(np.int32)
