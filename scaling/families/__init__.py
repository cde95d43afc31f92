"""The registry of model families and training objectives (docs/design.md, "Families").

    family = family_of(config.model)      # gpt | bert | encdec
    objective = objective_of(config)      # causal_lm | masked_lm | seq2seq
    model = family.make_model(config.model, "train", implementation)
    terms = objective.loss(model.apply(variables, *family.model_args(batch)), batch)

Everything that varies by family or objective is reached through these two objects; no
other module branches on a family name. Registering a new one is one file that defines
`FAMILY` or `OBJECTIVE`, plus a line below.
"""

from __future__ import annotations

from scaling import accounting
from scaling.config import Config, ConfigError, ModelConfig
from scaling.families import (
    bert,
    bert_task,
    causal_lm,
    encdec,
    gpt,
    gpt_task,
    masked_lm,
    seq2seq,
)
from scaling.families.registry import (
    MODES,
    BatchField,
    Family,
    LossTerms,
    Objective,
    Registry,
)

__all__ = [
    "MODES", "BatchField", "Family", "LossTerms", "Objective", "batch_fields", "build_model",
    "family_names",
    "family_of",
    "flops_per_token", "get_family", "get_objective", "kaplan_flops_per_token",
    "objective_names", "objective_of", "param_counts",
]

FAMILIES = Registry("model family")
OBJECTIVES = Registry("training objective")

for _objective in (causal_lm.OBJECTIVE, masked_lm.OBJECTIVE, seq2seq.OBJECTIVE,
                   bert_task.OBJECTIVE, gpt_task.OBJECTIVE):
    OBJECTIVES.register(_objective)
for _family in (gpt.FAMILY, bert.FAMILY, encdec.FAMILY):
    FAMILIES.register(_family)


def family_names() -> tuple[str, ...]:
    return FAMILIES.names()


def objective_names() -> tuple[str, ...]:
    return OBJECTIVES.names()


def get_family(name: str) -> Family:
    return FAMILIES.get(name, "model.family")


def get_objective(name: str) -> Objective:
    return OBJECTIVES.get(name, "train.objective")


def family_of(model: ModelConfig) -> Family:
    """The registered family of a model config (ConfigError for an unknown name)."""
    return get_family(model.family)


def objective_of(config: Config) -> Objective:
    """The run's objective: `train.objective`, or its family's default; ConfigError when the
    family does not train with it."""
    family = family_of(config.model)
    name = config.train.objective or family.objectives[0]
    objective = get_objective(name)
    if name not in family.objectives:
        raise ConfigError(f"train.objective={name!r} does not apply to the {family.name} "
                          f"family; its objectives: {', '.join(family.objectives)}")
    return objective


def build_model(config: Config, mode: str = "eval", implementation: str = "xla"):
    """The Flax module a run trains: the objective's task model (a head on the family's
    model) where it has one, else the family's model."""
    objective = objective_of(config)
    if objective.make_model is not None:
        return objective.make_model(config, mode, implementation)
    return family_of(config.model).make_model(config.model, mode, implementation)


def batch_fields(config: Config) -> tuple[BatchField, ...]:
    """The batch schema of a run: its objective's fields plus what its options add."""
    return objective_of(config).batch_fields(config)


def param_counts(model: ModelConfig) -> dict:
    """Total, embedding and non-embedding parameters of `model` (scaling/accounting.py)."""
    return accounting.param_counts(model, family_of(model).layout(model))


def flops_per_token(model: ModelConfig, seq_len: int) -> dict:
    """Training FLOPs per token, dense + attention (scaling/accounting.py)."""
    return accounting.flops_per_token(model, family_of(model).layout(model), seq_len)


def kaplan_flops_per_token(model: ModelConfig, seq_len: int) -> float:
    """Kaplan et al. 2020 Table 1 forward FLOPs per token (scaling/accounting.py)."""
    return accounting.kaplan_flops_per_token(model, family_of(model).layout(model), seq_len)
