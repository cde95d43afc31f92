"""Model families. Each module exposes the same surface: make_model, dummy_batch, init_args,
loss_terms. `family(model_config)` returns the module for a config."""

from types import ModuleType

from scaling.config import ModelConfig


def family(model: ModelConfig) -> ModuleType:
    """The family module (gpt, bert or encdec) that builds and scores `model`."""
    from scaling.models import bert, encdec, gpt

    return {"gpt": gpt, "bert": bert, "encdec": encdec}[model.family]
