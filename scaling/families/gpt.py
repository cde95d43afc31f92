"""The gpt family (GPT-1, GPT-2, GPT-3): a causal decoder with a tied LM head."""

from __future__ import annotations

from scaling.accounting import Layout, StackLayout
from scaling.config import ModelConfig
from scaling.families.registry import Family
from scaling.models import decoding
from scaling.models.gpt import GPT


def make_model(model: ModelConfig, mode: str = "eval", implementation: str = "xla") -> GPT:
    return GPT(model, deterministic=mode != "train", implementation=implementation,
               decode=mode == "decode")


def model_args(batch: dict) -> tuple:
    return (batch["inputs"], batch["positions"], batch["segment_ids"])


def layout(model: ModelConfig) -> Layout:
    return Layout(stacks=(StackLayout(model.n_layers, causal=True),))


FAMILY = Family("gpt", ("causal_lm",), make_model, model_args, layout,
                description="causal decoder, tied LM head (GPT-1/2/3)",
                decoder=decoding.generate)
