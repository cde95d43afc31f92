"""The encdec family (Vaswani et al. 2017): encoder + decoder with cross-attention, shared
embeddings, logits tied to them."""

from __future__ import annotations

from scaling.accounting import Layout, StackLayout
from scaling.config import ConfigError, ModelConfig
from scaling.families.registry import Family


def make_model(model: ModelConfig, mode: str = "eval", implementation: str = "xla"):
    from scaling.models.encdec import EncDec  # lazy: the registry imports no JAX

    return EncDec(model, deterministic=mode != "train", implementation=implementation,
                  decode=mode == "decode")


def translator(*args, **kwargs):
    """Greedy or beam search from sources: scaling.models.seq2seq_decoding.translate_ids."""
    from scaling.models.seq2seq_decoding import translate_ids

    return translate_ids(*args, **kwargs)


def model_args(batch: dict) -> tuple:
    return (batch["inputs"], batch["input_positions"], batch["input_segment_ids"],
            batch["decoder_inputs"], batch["positions"], batch["segment_ids"])


def layout(model: ModelConfig) -> Layout:
    return Layout(stacks=(StackLayout(model.n_layers, causal=False),
                          StackLayout(model.n_decoder_layers, causal=True, cross=True)))


def check(model: ModelConfig) -> None:
    if model.n_decoder_layers <= 0:
        raise ConfigError(f"model.n_decoder_layers={model.n_decoder_layers}: must be positive "
                          f"for the encdec family")
    if model.mup_base_width:
        raise ConfigError("model.mup_base_width: μP is implemented for the gpt family only")


FAMILY = Family("encdec", ("seq2seq",), make_model, model_args, layout, check,
                description="encoder-decoder Transformer (Vaswani et al. 2017)",
                translator=translator)
