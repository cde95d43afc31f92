"""Typed, frozen run configuration: dataclasses, the presets registry, `--set` overrides, checks.

One `Config` flows into every module; layers receive only the fields they need. Derived
quantities (head width, the parsed data spec, ...) are computed, never stored twice.

This module holds only the types and their parsing. Presets live in scaling/presets/, the
checks that read the families, objectives and layer tables in scaling/validate.py.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import typing
from dataclasses import dataclass, field

from scaling.errors import UserError


class ConfigError(UserError, ValueError):
    """A bad preset, override or value. The CLI prints it as one line and exits 2."""


@dataclass(frozen=True)
class ModelConfig:
    """Shape and behaviour of one Transformer-family model."""

    family: str = "gpt"  # a registered family: gpt | bert | encdec (scaling/families/)
    vocab_size: int = 50257
    n_layers: int = 12  # encoder layers for encdec, all layers otherwise
    n_decoder_layers: int = 0  # encdec only
    d_model: int = 768
    n_heads: int = 12
    d_ff: int = 3072
    max_len: int = 1024  # positions the embedding table covers
    pos_emb: str = "learned"  # learned | sinusoidal
    norm: str = "pre"  # pre (GPT-2/3) | post (Vaswani, BERT, GPT-1)
    activation: str = "gelu_tanh"  # gelu (exact, erf) | gelu_tanh | relu
    dropout: float = 0.1  # residual and embedding dropout
    attn_dropout: float = 0.1
    local_window: int = 0  # band width r of local attention layers; 0 = all dense
    local_every: int = 2  # with local_window > 0: layer l is banded when l % local_every == 1
    type_vocab_size: int = 2  # bert segment embeddings
    tie_embeddings: bool = True
    ln_eps: float = 1e-5
    init_std: float = 0.02
    scan_layers: bool = True
    # scanned stack: layers per loop iteration (same parameter tree); 0 = auto, resolved per
    # platform in platform.py (all layers on CPU for shallow stacks, 1 elsewhere)
    scan_unroll: int = 0
    remat: str = "none"  # none | full | dots | dots_no_batch  (see models/stack.py)
    dtype: str = "auto"  # compute dtype (auto: bfloat16 on GPU/TPU, float32 on CPU); params f32
    attention: str = "auto"  # auto (fused kernel on GPU/TPU, xla on CPU) | xla | cudnn | splash

    vocab_multiple: int = 128  # embedding rows padded to a multiple of this (MXU/tensor split)
    mup_base_width: int = 0  # μP (Yang et al. 2022) when > 0: the width hyperparameters fit
    scale_attn: bool = True  # attention logits × 1/√H (Vaswani §3.2.1); GPT-Neo: false

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
    nsp: bool = False  # masked_lm: sentence pairs + next-sentence labels (BERT §3.1)
    # Sequences start with the tokenizer's bos: true for runs trained here (every document
    # starts with it); `convert --from-hf` records what the model's own tokenizer does
    # (GPT-2: false, BERT: true, its [CLS]). Generation and scoring follow it.
    bos_prefix: bool = True

    @functools.cached_property
    def spec(self):
        """`source` parsed once into a typed DataSpec (scaling/data/spec.py); a bad spec
        raises a ConfigError naming it."""
        from scaling.data.spec import parse_spec

        return parse_spec(self.source)


@dataclass(frozen=True)
class MeshConfig:
    """Device-mesh axis sizes; one of data, fsdp, tensor may be -1 to take the remaining
    devices. `replica` (outermost) is data parallelism across slices: one per slice of a
    multi-slice job, over the data-centre network (scaling/sharding.py). `stage` > 1 is
    pipeline parallelism: each stage holds n_layers / stage consecutive layers and the
    train.microbatches flow through the stages (GPipe; scaling/models/pipeline.py)."""

    data: int = 1
    fsdp: int = -1
    tensor: int = 1
    replica: int = 1
    stage: int = 1


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup, then cosine decay (GPT-3 §B) or inverse square root
    (Vaswani et al. §5.3); see scaling/train/optimizer.py."""

    lr: float = 6e-4  # the peak learning rate, reached at the end of warmup
    schedule: str = "cosine"  # cosine | rsqrt | linear_decay
    min_lr_ratio: float = 0.1  # cosine decays to this fraction of lr (GPT-3 §B: 10%)
    warmup_steps: int = 100
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 0.1
    clip_norm: float = 1.0
    z_loss: float = 0.0  # PaLM §5 auxiliary z · log²Z (1e-4 there); 0 = off
    label_smoothing: float = 0.0  # ε of the seq2seq loss (Vaswani et al. §5.4: 0.1)


@dataclass(frozen=True)
class TrainConfig:
    """The training loop: batch geometry, length, logging and evaluation cadence."""

    steps: int = 1000
    objective: str = ""  # a registered objective (scaling/families/); "" = the family's default
    global_batch: int = 32  # sequences per optimizer step, over all devices
    seq_len: int = 0  # 0 = the model's max_len
    microbatches: int = 1  # gradient accumulation: global_batch is split into this many
    # fsdp-sharded weights: "layer" gathers each layer's where it is used, forward and again
    # in the backward (ZeRO-3 memory); "step" gathers all of them once a step and keeps them
    # whole through the backward (a quarter of the all-gathers for gpt-tiny on (2, 2, 2), the
    # memory of data parallelism; measured no faster on CPU: README "Performance")
    fsdp_gather: str = "layer"
    seed: int = 0
    log_every: int = 10
    eval_every: int = 100
    eval_batches: int = 8
    eval_bleu: int = 0  # seq2seq: greedy-decode this many validation pairs at each eval, BLEU
    eval_tasks: str = ""  # few-shot tasks at each eval, comma-separated NAME[@SHOTS], e.g. "2D+@4"
    checkpoint_every: int = 500
    keep_last: int = 3
    keep_period: int = 0  # also keep every keep_period-th step; 0 = none
    max_nonfinite: int = 5  # stop after this many non-finite (skipped) steps in a row
    compile_cache: bool = True  # persistent XLA compilation cache under the data cache dir
    dropout_rng: str = "threefry"  # dropout masks' PRNG: threefry | rbg | unsafe_rbg (rng.py)


@dataclass(frozen=True)
class FinetuneConfig:
    """`scaling finetune`: a task head on a pretrained backbone (docs: README "Fine-tuning").
    Empty / zero values are inferred from the task files when the run starts and stored."""

    task: str = ""  # DIR of train/validation[/test].{jsonl,csv,tsv}, or tfds:glue/CONFIG
    task_type: str = ""  # classification | regression | multiple_choice; "" = from the fields
    num_labels: int = 0  # classes (1 for regression); 0 = from the train labels
    num_choices: int = 0  # multiple choice: choices per example; 0 = from the train file
    lm_weight: float = 0.5  # GPT-1 §3.2: L = L_task + λ·L_LM (0 disables the LM term)
    epochs: float = 3.0  # train.steps = ceil(epochs · train examples / global_batch) unless set
    metric: str = ""  # dev metric that picks the best checkpoint; "" = by task type
    text_field: str = "text"
    pair_field: str = "text_pair"
    label_field: str = "label"
    choices_field: str = "choices"
    init_from: str = ""  # the backbone's run directory (recorded)


@dataclass(frozen=True)
class Config:
    """Everything a run needs. `name` is the preset it started from."""

    name: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mesh: MeshConfig = field(default_factory=MeshConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    @property
    def seq_len(self) -> int:
        return self.train.seq_len or self.model.max_len

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Overrides: `--set model.d_model=256 --set train.steps=10`.

_SECTIONS = {"model": ModelConfig, "data": DataConfig, "mesh": MeshConfig,
             "optim": OptimConfig, "train": TrainConfig, "finetune": FinetuneConfig}


def field_types(cls) -> dict[str, type]:
    """The resolved annotation of every field of dataclass `cls` (no `eval` of strings)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _is_huge_integral(raw: str) -> bool:
    try:
        value = float(raw)
    except ValueError:
        return False
    return math.isfinite(value) and value.is_integer() and abs(value) > 2**53


def _parse_value(key: str, raw: str, typ) -> object:
    """`raw` (command-line text) as a value of `typ`; only bool, int, float and str fields
    exist in the config, and a field of any other type is a programming error."""
    try:
        if typ is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if typ is int:
            try:
                return int(raw.strip())  # exact, however large (a seed of 2^53 + 1)
            except ValueError:
                pass
            value = float(raw)  # accepts 1e3 as well as 1000
            if not value.is_integer() or abs(value) > 2**53:  # beyond 2^53 floats skip ints
                raise ValueError
            return int(value)
        if typ is float:
            value = float(raw)
            if math.isfinite(value):
                return value
        if typ is str:
            return str(raw)
    except (ValueError, OverflowError):
        big = typ is int and _is_huge_integral(raw)
        hint = "; too large for exponent notation, write it in digits" if big else ""
        raise ConfigError(f"--set {key}={raw}: expected a value of type {typ.__name__}"
                          f"{hint}") from None
    if typ is float:
        raise ConfigError(f"--set {key}={raw}: expected a finite number")
    raise TypeError(f"config field {key} has unsupported type {typ!r}; config fields are "
                    f"bool, int, float or str")


def _check_value(key: str, value, typ, where: str) -> object:
    """A value read from JSON, checked against the field's type (ints are accepted where a
    float is expected; bools are not ints here)."""
    if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: {key}={value!r} is not a finite number")
        return float(value)
    if typ in (bool, int, float, str) and type(value) is typ:
        return value
    if typ not in (bool, int, float, str):
        raise TypeError(f"config field {key} has unsupported type {typ!r}")
    raise ConfigError(f"{where}: {key}={value!r} is not a {typ.__name__}")


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
    types_ = field_types(type(obj))
    head = parts[0]
    if head not in types_:
        known = ", ".join(sorted(types_))
        raise ConfigError(f"--set {key}: unknown key {head!r} (known here: {known})")
    current = getattr(obj, head)
    if dataclasses.is_dataclass(current):
        if len(parts) == 1:
            raise ConfigError(f"--set {key}: {head!r} is a section; name one of its keys")
        return dataclasses.replace(obj, **{head: _replace_path(current, parts[1:], raw, key)})
    if len(parts) > 1:
        raise ConfigError(f"--set {key}: {head!r} is a value, not a section")
    return dataclasses.replace(obj, **{head: _parse_value(key, raw, types_[head])})


def from_dict(d: dict, where: str = "config.json") -> Config:
    """Rebuild a Config from `to_dict()` output (e.g. a run directory's config.json); unknown
    keys and values of the wrong type raise ConfigError naming `where`."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a JSON object, found {type(d).__name__}")
    kwargs = {}
    for name, value in d.items():
        if name == "name":
            kwargs[name] = _check_value(name, value, str, where)
            continue
        if name not in _SECTIONS:
            raise ConfigError(f"{where}: unknown key {name!r}")
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {name} must be an object of settings")
        cls = _SECTIONS[name]
        types_ = field_types(cls)
        unknown = set(value) - set(types_)
        if unknown:
            raise ConfigError(f"{where}: unknown key {name}.{sorted(unknown)[0]}")
        kwargs[name] = cls(**{k: _check_value(f"{name}.{k}", v, types_[k], where)
                              for k, v in value.items()})
    return Config(**kwargs)


def _check_field_types() -> None:
    """Every setting is a bool, int, float or str (what `--set` and config.json can carry);
    a field of another type is a programming error caught at import."""
    for section, cls in _SECTIONS.items():
        for name, typ in field_types(cls).items():
            if typ not in (bool, int, float, str):
                raise TypeError(f"config field {section}.{name} has unsupported type {typ!r}")


_check_field_types()
