"""What a model family and a training objective are, and the tables they are registered in.

A `Family` (gpt, bert, encdec) says how to build the model for a mode, which batch fields
the model reads, its parameter/FLOP layout, its checks, and the hooks later work fills in
(a decoder for generation, a translator; HuggingFace conversion is keyed by family in
scaling/hf/converters.py). An `Objective` (causal_lm, masked_lm, seq2seq, ...) says what a
batch holds (the schema), how the model's outputs become loss terms and metrics, and which
data pipeline produces its batches. docs/design.md, "Adding a family or an objective",
gives the recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scaling.config import ConfigError

MODES = ("train", "eval", "decode")  # train: dropout on; eval: deterministic; decode: KV cache


@dataclass(frozen=True)
class BatchField:
    """One array of a batch: name, dtype, rank (2 = [B, T], 1 = [B]) and how to fill a
    stand-in batch (dummy for init and eval_shape, synthetic for benchmarks):

    ids: token ids (random in the vocabulary); next: the ids of field `source` shifted left
    by one (next-token targets of one random sequence); positions: 0..T-1; segments: all 1
    (one document a row); weights: all 1.0; labels: class ids (random below `classes`);
    zeros.
    """

    name: str
    dtype: str = "int32"
    rank: int = 2
    fill: str = "ids"
    classes: int = 2
    source: str = ""  # with fill="next": the field these are the next tokens of

    def shape(self, batch: int, length: int) -> tuple[int, ...]:
        return (batch, length) if self.rank == 2 else (batch,)


@dataclass(frozen=True)
class LossTerms:
    """Sums over a (micro)batch, so accumulation and data parallelism divide once:
    loss = total / weight; each metric = numerator / denominator."""

    total: object
    weight: object
    metrics: dict = field(default_factory=dict)  # name -> (numerator, denominator)


@dataclass(frozen=True)
class Objective:
    """A training objective: its batch schema, loss, metrics and data pipeline.

    loss(outputs, batch, config) -> LossTerms, where outputs are what the family's model
    returns for that batch and `config` the run's Config (z-loss, label smoothing, ...).
    load_data(config, process_index=, process_count=) -> a pipeline with .iterator(step),
    .eval_batches(), .tokenizer (scaling/data/).
    """

    name: str
    fields: tuple[BatchField, ...]
    loss: Callable
    load_data: Callable
    metrics: tuple[str, ...] = ()
    description: str = ""
    options: tuple[str, ...] = ()  # boolean config switches ("data.nsp") it honours
    extra_fields: Callable = lambda config: ()  # fields those switches add to `fields`
    # A task head on the family's model (fine-tuning): make_model(config, mode,
    # implementation) -> a Flax module taking the family's model_args; None = the family's.
    make_model: Callable | None = None
    # A task head's outputs from the model's (fine-tuning): task_logits(outputs) -> [B, K].
    # Its runs then score the whole dev split at each evaluation (task metrics,
    # best checkpoint: scaling/eval/finetune.py).
    task_logits: Callable | None = None

    def batch_fields(self, config) -> tuple[BatchField, ...]:
        """The batch schema of a run with `config`: `fields` plus what its options add
        (masked_lm with data.nsp: `nsp_labels`)."""
        return self.fields + tuple(self.extra_fields(config))


@dataclass(frozen=True)
class Family:
    """A model family. `objectives` lists the objectives its models train with; the first is
    the default (`train.objective=""`).

    make_model(model_config, mode, implementation) -> a Flax module;
    model_args(batch) -> the module's positional call arguments taken from a batch;
    layout(model_config) -> scaling.accounting.Layout (parameter and FLOP accounting);
    check(model_config) raises ConfigError for settings the family cannot honour.
    """

    name: str
    objectives: tuple[str, ...]
    make_model: Callable
    model_args: Callable
    layout: Callable
    check: Callable = lambda model: None
    description: str = ""
    decoder: Callable | None = None  # continue a prompt (scaling/models/decoding.py)
    translator: Callable | None = None  # source -> target search (models/seq2seq_decoding.py)
    finetune: str = ""  # the objective `scaling finetune` trains this family's runs with
    pipeline: bool = False  # its stack runs as pipeline stages (mesh.stage > 1; models/pipeline.py)


class Registry:
    """name -> entry, with errors that list what is registered."""

    def __init__(self, kind: str):
        self.kind, self._entries = kind, {}

    def register(self, entry):
        if entry.name in self._entries:
            raise ValueError(f"{self.kind} {entry.name!r} is registered twice")
        self._entries[entry.name] = entry
        return entry

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def get(self, name: str, key: str):
        """The entry called `name`; ConfigError naming config key `key` otherwise."""
        if name not in self._entries:
            raise ConfigError(f"{key}={name!r}: unknown {self.kind}; expected one of "
                              f"{', '.join(self._entries)}")
        return self._entries[name]
