"""What one HuggingFace architecture means in our parameter tree, and the machinery that
applies it in either direction.

Letter legend: V vocab (padded: Vp), D model width, N heads, H head width, F MLP width,
L layers.

An `Architecture` gives, for each of our parameters, a function of the HF tensors (`Rules`:
one table for parameters outside the layer stack, one per layer), and for each HF tensor a
function of our parameters (`export`). Every function is a reshape, transpose, slice, pad or
concatenation, so a round trip is bitwise. Our stacks are scanned (one leaf [L, ...] per
parameter) or unrolled (`layer_{l}` subtrees); `layer_key` tells which.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scaling.config import ModelConfig
from scaling.errors import UserError

Getter = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class Rules:
    """Our parameters (paths under `params`, '/'-joined) as functions of an HF getter `g`
    (g(name) -> float32 array; g.has(name) -> bool). `layer(l)` keys are relative to the
    stack's layer."""

    globals: dict[str, Callable]
    layer: Callable[[int], dict[str, Callable]]


@dataclass(frozen=True)
class Architecture:
    """One HuggingFace model class.

    model_fields(hf_config) -> ModelConfig field values (raises UserError if unsupported);
    rules(model) -> Rules (import); export(model) -> {HF tensor name: fn(ours)} where
    ours(path) is a global parameter and ours(key, l) layer l's; hf_config(model, tokens) ->
    config.json for `transformers`, `tokens` the special ids of the run's tokenizer.
    """

    name: str
    family: str
    model_type: str
    model_fields: Callable[[dict], dict]
    rules: Callable[[ModelConfig], Rules]
    export: Callable[[ModelConfig], dict]
    hf_config: Callable[[ModelConfig, dict], dict]


# ---------------------------------------------------------------------------------------------
# Helpers shared by the architecture files.


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """[V, ...] -> [Vp, ...]: the vocabulary padded with zero rows (masked in the logits)."""
    if x.shape[0] > rows:
        raise ValueError(f"{x.shape[0]} rows exceed the padded vocabulary of {rows}")
    return np.pad(x, [(0, rows - x.shape[0])] + [(0, 0)] * (x.ndim - 1))


def hf_config_value(hf: dict, key: str, default=None, *, required: bool = False):
    """hf[key], or `default`; a UserError naming the key when it is required and absent."""
    if key in hf and hf[key] is not None:
        return hf[key]
    if required:
        raise UserError(f"config.json has no {key!r}, which the {hf.get('model_type')} "
                        f"converter needs; the file is incomplete")
    return default


def fresh(shape: tuple[int, ...], kind: str, std: float, seed: int) -> np.ndarray:
    """A parameter the HF checkpoint lacks (e.g. the NSP head of BertForMaskedLM), initialized
    as our model would: kernels normal(std), LayerNorm scales 1, biases 0."""
    if kind == "kernel":
        return np.random.default_rng(seed).normal(0.0, std, shape).astype(np.float32)
    return (np.ones if kind == "scale" else np.zeros)(shape, np.float32)


# ---------------------------------------------------------------------------------------------
# Our tree: which leaves are per layer.

_UNROLLED = re.compile(r"^(?P<stack>[^/]+)/layer_(?P<l>\d+)/(?P<key>.+)$")
_SCANNED = re.compile(r"^(?P<stack>[^/]+)/layers/(?P<key>.+)$")


def layer_key(path: str) -> tuple[str, int | None]:
    """('self_attn/query/kernel', l) for an unrolled layer's leaf, (key, None) for a scanned
    stack's leaf [L, ...], ('', None) for a leaf outside the stack."""
    m = _UNROLLED.match(path)
    if m:
        return m["key"], int(m["l"])
    m = _SCANNED.match(path)
    if m:
        return m["key"], None
    return "", None


def leaf_maker(path: str, shape: tuple[int, ...], rules: Rules) -> Callable:
    """fn(g, index) -> the numpy block `index` (a tuple of slices) of our leaf `path`.

    A scanned leaf is filled layer by layer into one preallocated block, so no more than one
    layer's HF tensors and the block itself are in memory at a time."""
    key, l = layer_key(path)
    if not key:
        fn = rules.globals.get(path)
        if fn is None:
            raise KeyError(path)
        return lambda g, index: _checked(fn(g), shape, path)[index]
    if l is not None:
        fn = rules.layer(l).get(key)
        if fn is None:
            raise KeyError(path)
        return lambda g, index: _checked(fn(g), shape, path)[index]

    def stacked(g, index):
        layers = range(shape[0])[index[0]]
        rest = index[1:]
        out = None
        for i, layer in enumerate(layers):
            block = _checked(rules.layer(layer)[key](g), shape[1:], f"{path}[{layer}]")[rest]
            if out is None:
                out = np.empty((len(layers), *block.shape), np.float32)
            out[i] = block
        return out

    if key not in rules.layer(0):
        raise KeyError(path)
    return stacked


def _checked(x: np.ndarray, shape: tuple[int, ...], path: str) -> np.ndarray:
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{path}: the checkpoint gives shape {tuple(x.shape)}, the model "
                         f"has {tuple(shape)}")
    return np.asarray(x, np.float32)


class ShapeOnly:
    """A getter that returns zero-cost stand-ins of the right shape (a broadcast scalar), to
    run every rule once before anything is read or written."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.used: set[str] = set()  # the names the rules read

    def has(self, name: str) -> bool:
        return self.tensors.has(name)

    def __call__(self, name: str) -> np.ndarray:
        self.used.add(name)
        return np.broadcast_to(np.float32(0), self.tensors.shape(name))


class Reader:
    """The getter over an `HFTensors`: reads one tensor at a time from disk."""

    def __init__(self, tensors):
        self.tensors = tensors

    def has(self, name: str) -> bool:
        return self.tensors.has(name)

    def __call__(self, name: str) -> np.ndarray:
        return self.tensors.get(name)


# Tensors a checkpoint may hold that no parameter comes from: attention-mask and position-id
# buffers older `transformers` saved, and output layers tied to the token embedding.
IGNORED = re.compile(r"(^|\.)(attn\.(bias|masked_bias)|attention\.(self\.)?(bias|masked_bias)"
                     r"|position_ids|lm_head\.weight|cls\.predictions\.decoder\.(weight|bias))$")


def _alias_names(name: str) -> set[str]:
    """`name` and its pre-2019 BERT spellings (gamma/beta), as HFTensors resolves them."""
    old = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                      "LayerNorm.beta")
    return {name, old}


def check_all_used(used: set[str], tensors) -> None:
    """Every tensor of the checkpoint feeds a parameter (or is a known buffer): an unknown
    one means the architecture is not the one config.json names, and is refused."""
    seen = set().union(*(_alias_names(n) for n in used)) if used else set()
    extra = [n for n in tensors.names() if n not in seen and not IGNORED.search(n)]
    if extra:
        raise UserError(f"{tensors.directory}: {len(extra)} tensor(s) no parameter comes from "
                        f"({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}); the "
                        f"weights are not of the architecture config.json names")


def dry_run(rules: Rules, shapes: dict[str, tuple], tensors) -> None:
    """Apply every rule once, per layer, to shape-only stand-ins: a missing tensor or a shape
    that does not fit is a UserError now, before anything is read or written; so is a
    tensor no rule reads."""
    g = ShapeOnly(tensors)
    try:
        for path, shape in shapes.items():
            key, l = layer_key(path)
            if not key:
                _checked(rules.globals[path](g), shape, path)
            elif l is not None:
                _checked(rules.layer(l)[key](g), shape, path)
            else:
                for layer in range(shape[0]):
                    _checked(rules.layer(layer)[key](g), shape[1:], f"{path}[{layer}]")
    except ValueError as e:
        raise UserError(f"{tensors.directory}: {e}; config.json and the weights disagree, or "
                        f"--config/--set name another shape") from None
    check_all_used(g.used, tensors)


@dataclass(frozen=True)
class HFConverter:
    """A family's HuggingFace converter (scaling/hf/converters.py): the HF architectures it
    imports, and the one a run of the family exports to (`export_for(model)` raises
    UserError when none can hold it)."""

    architectures: tuple[Architecture, ...]
    export_for: Callable[[ModelConfig], Architecture]
