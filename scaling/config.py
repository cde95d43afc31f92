"""Typed, frozen run configuration: dataclasses, the presets registry, `--set` overrides, checks.

One `Config` flows into every module; layers receive only the fields they need. Derived
quantities (head width, non-embedding parameters, ...) are computed, never stored twice.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field

from scaling.errors import UserError


class ConfigError(UserError, ValueError):
    """A bad preset, override or value. The CLI prints it as one line and exits 2."""


@dataclass(frozen=True)
class ModelConfig:
    """Shape and behaviour of one Transformer-family model."""

    family: str = "gpt"  # gpt | bert | encdec
    vocab_size: int = 50257
    n_layers: int = 12  # encoder layers for encdec, all layers otherwise
    n_decoder_layers: int = 0  # encdec only
    d_model: int = 768
    n_heads: int = 12
    d_ff: int = 3072
    max_len: int = 1024  # positions the embedding table covers
    pos_emb: str = "learned"  # learned | sinusoidal
    norm: str = "pre"  # pre (GPT-2/3) | post (Vaswani, BERT, GPT-1)
    activation: str = "gelu"  # gelu | relu
    dropout: float = 0.1  # residual and embedding dropout
    attn_dropout: float = 0.1
    local_window: int = 0  # band width r of local attention layers; 0 = all dense
    local_every: int = 2  # with local_window > 0: layer l is banded when l % local_every == 1
    type_vocab_size: int = 2  # bert segment embeddings
    tie_embeddings: bool = True
    ln_eps: float = 1e-5
    init_std: float = 0.02
    scan_layers: bool = True
    remat: str = "none"  # none | full | dots | dots_no_batch  (see models/stack.py)
    dtype: str = "auto"  # compute dtype (auto: bfloat16 on GPU/TPU, float32 on CPU); params f32
    attention: str = "xla"  # xla | cudnn | auto (cudnn on GPU for causal masks)

    vocab_multiple: int = 128  # embedding rows padded to a multiple of this (MXU/tensor split)
    mup_base_width: int = 0  # μP (Yang et al. 2022) when > 0: the width hyperparameters fit

    @property
    def width_mult(self) -> float:
        """d_model / mup_base_width under μP, else 1 (standard parameterization)."""
        return self.d_model / self.mup_base_width if self.mup_base_width > 0 else 1.0

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def padded_vocab(self) -> int:
        """Rows of the embedding table: vocab_size rounded up; extra logits are masked off."""
        m = max(self.vocab_multiple, 1)
        return -(-self.vocab_size // m) * m


@dataclass(frozen=True)
class DataConfig:
    """Where tokens come from. `source` takes the `--data` spec (see scaling/data)."""

    source: str = "embedded"
    tokenizer: str = "sentencepiece"  # sentencepiece | byte | path/to/file.model
    tokenizer_type: str = "bpe"  # bpe | unigram (trained SentencePiece only)
    vocab_size: int = 0  # SentencePiece size to train; 0 = the model's vocab_size
    cache_dir: str = ""  # built datasets and tokenizers; "" = $SCALING_CACHE or ~/.cache/scaling
    text_field: str = "text"  # jsonl/tfds field holding the text
    seed: int = 0
    tfds_data_dir: str = ""  # tfds: sources; "" = $TFDS_DATA_DIR or TFDS's default
    max_documents: int = 0  # read at most this many documents per split; 0 = all
    input_field: str = ""  # seq2seq source field; "" = inferred ("de-en" translates en -> de)
    target_field: str = ""  # seq2seq target field; "" = inferred
    label_field: str = "label"  # classification label field


@dataclass(frozen=True)
class MeshConfig:
    """Device-mesh axis sizes; one may be -1 to take the remaining devices."""

    data: int = 1
    fsdp: int = -1
    tensor: int = 1


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup and cosine decay (GPT-3 §B)."""

    lr: float = 6e-4
    min_lr_ratio: float = 0.1  # cosine decays to this fraction of lr (GPT-3 §B: 10%)
    warmup_steps: int = 100
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    z_loss: float = 0.0  # PaLM §5 auxiliary z · log²Z (1e-4 there); 0 = off


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: batch geometry, length, logging and evaluation cadence."""

    steps: int = 1000
    global_batch: int = 32  # sequences per optimizer step, over all devices
    seq_len: int = 0  # 0 = the model's max_len
    microbatches: int = 1  # gradient accumulation: global_batch is split into this many
    seed: int = 0
    log_every: int = 10
    eval_every: int = 100
    eval_batches: int = 8
    checkpoint_every: int = 500
    keep_last: int = 3
    keep_period: int = 0  # also keep every keep_period-th step; 0 = none
    max_nonfinite: int = 5  # stop after this many non-finite (skipped) steps in a row


@dataclass(frozen=True)
class Config:
    """Everything a run needs. `name` is the preset it started from."""

    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def seq_len(self) -> int:
        return self.train.seq_len or self.model.max_len

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Presets: functions in configs/<family>.py registered by name.

_PRESETS: dict[str, typing.Callable[[], Config]] = {}


def register(name: str):
    """Decorator: register a zero-argument function returning a `Config` as preset `name`."""

    def wrap(fn):
        _PRESETS[name] = fn
        return fn

    return wrap


def preset_names() -> list[str]:
    _load_presets()
    return sorted(_PRESETS)


def _load_presets() -> None:
    import configs  # noqa: F401  (importing registers every family's presets)


def get_preset(name: str) -> Config:
    """The preset called `name`, or a ConfigError listing the known names."""
    _load_presets()
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    return dataclasses.replace(_PRESETS[name](), name=name)


# ---------------------------------------------------------------------------------------------
# Overrides: `--set model.d_model=256 --set train.steps=10`.


def _parse_value(key: str, raw: str, typ) -> object:
    if isinstance(typ, str):
        typ = eval(typ, vars(typing) | {"types": types})  # annotations are strings here
    try:
        if typ is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            value = float(raw)  # accepts 1e3 as well as 1000
            if not value.is_integer():
                raise ValueError
            return int(value)
        if typ is float:
            return float(raw)
        return str(raw)
    except ValueError:
        name = getattr(typ, "__name__", str(typ))
        raise ConfigError(f"--set {key}={raw}: expected a value of type {name}") from None


def apply_overrides(config: Config, overrides: list[str]) -> Config:
    """Return `config` with each `section.key=value` applied; unknown keys raise ConfigError."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected the form section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        config = _replace_path(config, parts, raw, key)
    return config


def _replace_path(obj, parts: list[str], raw: str, key: str):
    fields = {f.name: f for f in dataclasses.fields(obj)}
    head = parts[0]
    if head not in fields:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"--set {key}: unknown key {head!r} (known here: {known})")
    current = getattr(obj, head)
    if dataclasses.is_dataclass(current):
        if len(parts) == 1:
            raise ConfigError(f"--set {key}: {head!r} is a section; name one of its keys")
        return dataclasses.replace(obj, **{head: _replace_path(current, parts[1:], raw, key)})
    if len(parts) > 1:
        raise ConfigError(f"--set {key}: {head!r} is a value, not a section")
    return dataclasses.replace(obj, **{head: _parse_value(key, raw, fields[head].type)})


def from_dict(d: dict) -> Config:
    """Rebuild a Config from `to_dict()` output (e.g. a run directory's config.json)."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    kwargs = {}
    for name, value in d.items():
        if name not in sections:
            raise ConfigError(f"config.json: unknown key {name!r}")
        if isinstance(value, dict):
            cls = {"model": ModelConfig, "data": DataConfig, "mesh": MeshConfig,
                   "optim": OptimConfig, "train": TrainConfig}[name]
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise ConfigError(f"config.json: unknown key {name}.{sorted(unknown)[0]}")
            value = cls(**value)
        kwargs[name] = value
    return Config(**kwargs)


# ---------------------------------------------------------------------------------------------
# Validation: everything that can be checked before any device work starts.

_CHOICES = {
    "model.family": ("gpt", "bert", "encdec"),
    "model.pos_emb": ("learned", "sinusoidal"),
    "model.norm": ("pre", "post"),
    "model.activation": ("gelu", "relu"),
    "model.remat": ("none", "full", "dots", "dots_no_batch"),
    "model.dtype": ("auto", "float32", "bfloat16", "float16"),
    "model.attention": ("xla", "cudnn", "auto"),
    "data.tokenizer_type": ("bpe", "unigram"),
}


def validate(config: Config) -> Config:
    """Raise ConfigError naming the first inconsistent value; return the config unchanged."""
    m, t, o = config.model, config.train, config.optim
    for key, choices in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if value not in choices:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(choices)}")
    positive = {
        "model.vocab_size": m.vocab_size, "model.n_layers": m.n_layers,
        "model.d_model": m.d_model, "model.n_heads": m.n_heads, "model.d_ff": m.d_ff,
        "model.max_len": m.max_len, "train.steps": t.steps, "train.global_batch": t.global_batch,
        "train.microbatches": t.microbatches, "train.log_every": t.log_every,
        "train.eval_every": t.eval_every, "train.eval_batches": t.eval_batches,
        "train.checkpoint_every": t.checkpoint_every, "train.keep_last": t.keep_last,
        "train.max_nonfinite": t.max_nonfinite,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}={value}: must be a positive integer")
    if m.d_model % m.n_heads:
        raise ConfigError(
            f"model.n_heads={m.n_heads} does not divide model.d_model={m.d_model}; "
            f"choose heads so that d_model / heads is a whole head width"
        )
    if t.keep_period < 0:
        raise ConfigError(f"train.keep_period={t.keep_period}: must be >= 0 (0 = none)")
    if m.mup_base_width < 0 or (m.mup_base_width and m.family != "gpt"):
        raise ConfigError(f"model.mup_base_width={m.mup_base_width}: μP is a non-negative "
                          f"width and is implemented for the gpt family")
    if m.family == "encdec" and m.n_decoder_layers <= 0:
        raise ConfigError("model.n_decoder_layers must be positive for the encdec family")
    if m.local_window < 0 or m.local_every < 1:
        raise ConfigError("model.local_window must be >= 0 and model.local_every >= 1")
    if not 0.0 <= m.dropout < 1.0 or not 0.0 <= m.attn_dropout < 1.0:
        raise ConfigError("model.dropout and model.attn_dropout must lie in [0, 1)")
    if t.seq_len < 0 or config.seq_len > m.max_len:
        raise ConfigError(
            f"train.seq_len={t.seq_len} exceeds model.max_len={m.max_len} (or is negative)"
        )
    if t.global_batch % t.microbatches:
        raise ConfigError(
            f"train.microbatches={t.microbatches} does not divide "
            f"train.global_batch={t.global_batch}"
        )
    if o.lr <= 0 or o.warmup_steps < 0 or not 0 <= o.min_lr_ratio <= 1:
        raise ConfigError("optim.lr must be > 0, warmup_steps >= 0, min_lr_ratio in [0, 1]")
    if o.clip_norm < 0 or o.weight_decay < 0 or o.z_loss < 0:
        raise ConfigError("optim.clip_norm, optim.weight_decay and optim.z_loss must be >= 0")
    sizes = (config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
    if sum(s == -1 for s in sizes) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ConfigError(
            f"mesh sizes data={sizes[0]} fsdp={sizes[1]} tensor={sizes[2]}: each must be "
            f"positive, and at most one may be -1"
        )
    return config
