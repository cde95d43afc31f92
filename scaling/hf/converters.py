"""Each family's HuggingFace converter: which HF architectures it imports, and which one a
run exports to (gpt: GPT2LMHeadModel, OpenAIGPTLMHeadModel, GPTNeoForCausalLM; bert:
BertForMaskedLM, BertForPreTraining, BertModel). A family without one converts neither way.

The table is keyed by family name here rather than hooked on the registry's `Family`: the
conversion commands (from_hf.py, to_hf.py) build and restore runs through the registry, so a
hook pointing back into this package would make the two packages import each other."""

from __future__ import annotations

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.hf import bert, gpt2, gpt_neo, openai_gpt
from scaling.hf.mapping import Architecture, HFConverter


def _common_checks(m: ModelConfig) -> None:
    if m.mup_base_width:
        raise UserError("a μP run (model.mup_base_width > 0) has output and attention "
                        "multipliers no HuggingFace architecture holds; it cannot be exported")
    if m.pos_emb != "learned" or not m.tie_embeddings:
        raise UserError(f"model.pos_emb={m.pos_emb}, tie_embeddings={m.tie_embeddings}: "
                        f"export needs learned positions and a tied output layer")


def gpt_export(m: ModelConfig) -> Architecture:
    """GPT-Neo for banded layers or unscaled attention, GPT-1 for post-LN, else GPT-2."""
    _common_checks(m)
    if m.local_window > 0 or not m.scale_attn:
        arch, why = gpt_neo.ARCHITECTURE, gpt_neo.exportable(m)
        if m.norm != "pre":
            why = "GPT-Neo is pre-LN; this run is post-LN with banded layers"
    elif m.norm == "post":
        arch, why = openai_gpt.ARCHITECTURE, openai_gpt.exportable(m)
    else:
        arch = gpt2.ARCHITECTURE
        why = "" if m.activation in gpt2.EXPORT_ACTIVATIONS else f"no {m.activation} in GPT-2"
    if why:
        raise UserError(f"this run cannot be exported as {arch.name}: {why}")
    return arch


def bert_export(m: ModelConfig) -> Architecture:
    _common_checks(m)
    if m.local_window > 0 or not m.scale_attn:
        raise UserError("HF BERT has no banded or unscaled attention; this run cannot be "
                        "exported")
    return bert.ARCHITECTURE_LIST[1]  # BertForPreTraining: every head


GPT = HFConverter((gpt2.ARCHITECTURE, openai_gpt.ARCHITECTURE, gpt_neo.ARCHITECTURE), gpt_export)
BERT = HFConverter(bert.ARCHITECTURE_LIST, bert_export)
CONVERTERS = {"gpt": GPT, "bert": BERT}  # family name -> its converter


def converter_for(model: ModelConfig) -> HFConverter | None:
    """The converter of `model`'s family, or None when the family has none."""
    return CONVERTERS.get(model.family)


def architectures() -> dict[str, Architecture]:
    """Every HF architecture some family imports, by its HF name."""
    return {arch.name: arch for converter in CONVERTERS.values()
            for arch in converter.architectures}
