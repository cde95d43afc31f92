"""Reading a HuggingFace model directory: config.json and the weights, tensor by tensor.

Weights come from `model.safetensors`, from shards listed in `model.safetensors.index.json`,
or (only where torch is importable) from `pytorch_model.bin`. Safetensors files are opened
memory-mapped, so a tensor is read when it is asked for and nothing else is held in memory.
Every file is checked when the directory is opened (present, complete, readable dtypes), so a
bad directory fails before anything is written.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from scaling.errors import UserError

SAFETENSORS, INDEX, TORCH_BIN = "model.safetensors", "model.safetensors.index.json", \
    "pytorch_model.bin"
READABLE_DTYPES = ("F64", "F32", "F16", "BF16")  # floating weights, converted to float32
NAME_PREFIXES = ("transformer.", "bert.", "model.")  # the base-model prefix of a head model


def read_hf_config(directory: str) -> dict:
    """The directory's config.json as a dict, or a UserError saying what is missing."""
    path = os.path.join(directory, "config.json")
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise UserError(f"--from-hf {directory} is a file; give the model's directory (the one "
                        f"holding config.json)")
    if not os.path.isdir(directory):
        raise UserError(f"--from-hf {directory}: no such directory")
    if not os.path.isfile(path):
        raise UserError(f"--from-hf {directory}: no config.json there; give a HuggingFace model "
                        f"directory (e.g. from `huggingface-cli download gpt2 --local-dir DIR`)")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot read it as JSON ({e})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a JSON object")
    _check_types(config, path)
    return config


_INT, _FLOAT, _TEXT, _BOOL = "a whole number", "a number", "text", "true or false"
CONFIG_TYPES = {  # the config.json keys the converters read, and what each must be
    **dict.fromkeys(("vocab_size", "n_embd", "n_layer", "n_head", "n_inner", "n_positions",
                     "n_ctx", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "num_layers", "num_heads", "window_size", "bos_token_id", "eos_token_id",
                     "pad_token_id"), _INT),
    **dict.fromkeys(("layer_norm_epsilon", "layer_norm_eps", "initializer_range",
                     "resid_pdrop", "attn_pdrop", "embd_pdrop", "embed_dropout",
                     "hidden_dropout_prob", "attention_probs_dropout_prob",
                     "attention_dropout", "resid_dropout"), _FLOAT),
    **dict.fromkeys(("model_type", "activation_function", "hidden_act", "afn",
                     "position_embedding_type"), _TEXT),
    **dict.fromkeys(("tie_word_embeddings", "scale_attn_weights",
                     "scale_attn_by_inverse_layer_idx"), _BOOL),
}


def _fits(value, kind: str) -> bool:
    if value is None:  # HF writes null for "not set"
        return True
    if kind == _INT:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if kind == _FLOAT:
        return isinstance(value, int | float) and not isinstance(value, bool) and (
            value == value and abs(value) != float("inf"))
    return isinstance(value, str if kind == _TEXT else bool)


def _check_types(config: dict, path: str) -> None:
    """Each key the converters read has its type (`"n_embd": "64"` is refused here, not
    failed on deep inside a converter)."""
    for key, kind in CONFIG_TYPES.items():
        if key in config and not _fits(config[key], kind):
            raise UserError(f"{path}: {key}={config[key]!r} is not {kind}; fix config.json")
    names = config.get("architectures")
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(n, str) for n in names)):
        raise UserError(f"{path}: architectures={names!r} is not a list of class names")


class HFTensors:
    """The tensors of one HuggingFace directory by name (base-model prefixes stripped).

    `shape(name)` reads the header only; `get(name)` reads one tensor as float32. Every file's
    header is read when the directory is opened (a truncated file fails here).
    """

    def __init__(self, directory: str):
        self.directory = directory
        self._files = _weight_files(directory)
        self._where: dict[str, tuple[str, str]] = {}  # short name -> (file, stored name)
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._dtypes: dict[str, str] = {}
        self._torch: dict | None = None
        for path in self._files:
            for stored, (dtype, shape) in _header(path).items():
                short = _strip(stored)
                self._where.setdefault(short, (path, stored))
                self._shapes.setdefault(short, tuple(shape))
                self._dtypes.setdefault(short, dtype)

    def names(self) -> list[str]:
        return sorted(self._where)

    def has(self, name: str) -> bool:
        return _alias(name, self._where) is not None

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of tensor `name` from the header; a UserError when its dtype is not one
        we read (buffers we never read, e.g. int64 position ids, may have any dtype)."""
        short = self._resolve(name)
        if self._dtypes[short] not in READABLE_DTYPES:
            path, stored = self._where[short]
            raise UserError(f"{path}: tensor {stored} has dtype {self._dtypes[short]}, which "
                            f"this converter cannot read (readable: "
                            f"{', '.join(READABLE_DTYPES)}); convert it to float32")
        return self._shapes[short]

    def get(self, name: str) -> np.ndarray:
        """Tensor `name` as a float32 NumPy array (read now, from disk)."""
        path, stored = self._where[self._resolve(name)]
        if path.endswith(".bin"):
            return self._torch_tensor(path, stored)
        from safetensors import safe_open

        with safe_open(path, framework="numpy") as f:
            if f.get_slice(stored).get_dtype() == "BF16":  # NumPy has no bfloat16 of its own
                return _bf16(path, stored)
            return np.asarray(f.get_tensor(stored), dtype=np.float32)

    def _resolve(self, name: str) -> str:
        found = _alias(name, self._where)
        if found is None:
            raise UserError(f"{self.directory}: the weights have no tensor {name!r}; the "
                            f"checkpoint is incomplete or not of the architecture its "
                            f"config.json names")
        return found

    def _torch_tensor(self, path: str, stored: str) -> np.ndarray:
        if self._torch is None:
            import torch

            self._torch = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return self._torch[stored].float().numpy()


def _strip(name: str) -> str:
    for prefix in NAME_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _alias(name: str, table: dict) -> str | None:
    """`name`, or its pre-2019 spelling (LayerNorm gamma/beta in early BERT checkpoints)."""
    if name in table:
        return name
    old = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                      "LayerNorm.beta")
    return old if old in table else None


def _weight_files(directory: str) -> list[str]:
    single, index = os.path.join(directory, SAFETENSORS), os.path.join(directory, INDEX)
    if os.path.isfile(index):
        try:
            with open(index, encoding="utf-8") as f:
                weight_map = json.load(f)["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise UserError(f"{index}: not a safetensors index ({e})") from None
        if not isinstance(weight_map, dict) or not weight_map or not all(
                isinstance(k, str) and isinstance(v, str) and v and os.path.basename(v) == v
                for k, v in weight_map.items()):
            raise UserError(f"{index}: weight_map must map tensor names to shard file names "
                            f"in the same directory; the index is damaged, download it again")
        files = [os.path.join(directory, n) for n in sorted(set(weight_map.values()))]
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise UserError(f"{index} lists {os.path.basename(missing[0])}, which is missing "
                            f"({len(missing)} of {len(files)} shards missing); download them all")
        return files
    if os.path.isfile(single):
        return [single]
    if os.path.isfile(os.path.join(directory, TORCH_BIN)):
        try:
            import torch  # noqa: F401
        except ImportError:
            raise UserError(f"{directory} holds only {TORCH_BIN}, which needs torch to read; "
                            f"install torch or download the model's safetensors files") from None
        return [os.path.join(directory, TORCH_BIN)]
    raise UserError(f"{directory}: no weights ({SAFETENSORS}, {INDEX} or {TORCH_BIN}); "
                    f"download the model files, not only its config")


def _header(path: str) -> dict[str, tuple[str, list[int]]]:
    """{stored name: (dtype, shape)} of one weights file; a truncated or damaged file is a
    UserError naming it."""
    if path.endswith(".bin"):
        import torch

        try:
            tensors = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as e:  # noqa: BLE001 - any unreadable pickle is a damaged file
            raise UserError(f"{path}: cannot read it ({type(e).__name__}: {e})") from None
        names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                 torch.float64: "F64"}
        return {k: (names.get(v.dtype, str(v.dtype)), list(v.shape)) for k, v in tensors.items()}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            out = {}
            for k in f.keys():
                s = f.get_slice(k)
                out[k] = (s.get_dtype(), list(s.get_shape()))
            return out
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path}: damaged or truncated safetensors file ({e}); download it "
                        f"again") from None


def _bf16(path: str, stored: str) -> np.ndarray:
    """A bfloat16 tensor read through its header offsets, widened to float32 (exact)."""
    import ml_dtypes

    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        info = json.loads(f.read(n))[stored]
    begin, end = info["data_offsets"]
    raw = np.memmap(path, np.uint16, "r", offset=8 + n + begin, shape=((end - begin) // 2,))
    return raw.view(ml_dtypes.bfloat16).astype(np.float32).reshape(info["shape"])
