"""The bert family (Devlin et al. 2019): a bidirectional post-LN encoder, MLM and NSP heads."""

from __future__ import annotations

from scaling.accounting import Layout, StackLayout, layer_norm_params
from scaling.config import ConfigError, ModelConfig
from scaling.families.registry import Family


def make_model(model: ModelConfig, mode: str = "eval", implementation: str = "xla"):
    from scaling.models.bert import BERT  # lazy: the registry imports no JAX

    if mode == "decode":
        raise ConfigError("the bert family is an encoder: it has no decode mode")
    return BERT(model, deterministic=mode != "train", implementation=implementation)


def model_args(batch: dict) -> tuple:
    return (batch["inputs"], batch["type_ids"], batch["positions"], batch["segment_ids"])


def layout(model: ModelConfig) -> Layout:
    """Beside the encoder: the embedding LayerNorm, the MLM transform (Dense + LayerNorm +
    an output bias [V]), the pooler Dense and the NSP classifier [D, 2]. Of those only the
    MLM transform acts at every position (FLOPs)."""
    d, v = model.d_model, model.padded_vocab
    heads = (layer_norm_params(d) + (d * d + d) + (d * d + d) + layer_norm_params(d) + v
             + (d * 2 + 2))
    return Layout(stacks=(StackLayout(model.n_layers, causal=False),), type_embeddings=True,
                  head_params=heads, head_matmul_weights=d * d)


def check(model: ModelConfig) -> None:
    if model.mup_base_width:
        raise ConfigError("model.mup_base_width: μP is implemented for the gpt family only")


FAMILY = Family("bert", ("masked_lm", "classify"), make_model, model_args, layout, check,
                description="bidirectional encoder with MLM/NSP heads (BERT)",
                finetune="classify")
