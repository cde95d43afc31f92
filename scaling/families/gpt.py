"""The gpt family (GPT-1, GPT-2, GPT-3): a causal decoder with a tied LM head."""

from __future__ import annotations

from scaling.accounting import Layout, StackLayout
from scaling.config import ModelConfig
from scaling.families.registry import Family

# Model code is imported where it is used: the registry itself imports no JAX, so config
# validation (which reads the registered names) stays fast.


def make_model(model: ModelConfig, mode: str = "eval", implementation: str = "xla"):
    from scaling.models.gpt import GPT

    return GPT(model, deterministic=mode != "train", implementation=implementation,
               decode=mode == "decode")


def decoder(*args, **kwargs):
    """KV-cache continuation of a prompt: scaling.models.decoding.generate."""
    from scaling.models.decoding import generate

    return generate(*args, **kwargs)


def model_args(batch: dict) -> tuple:
    return (batch["inputs"], batch["positions"], batch["segment_ids"])


def layout(model: ModelConfig) -> Layout:
    return Layout(stacks=(StackLayout(model.n_layers, causal=True),))


FAMILY = Family("gpt", ("causal_lm", "gpt_classify"), make_model, model_args, layout,
                description="causal decoder, tied LM head (GPT-1/2/3)",
                decoder=decoder, finetune="gpt_classify",
                pipeline=True)
