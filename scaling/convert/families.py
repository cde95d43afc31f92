"""The `hf_converter` hooks of the gpt and bert families (scaling/families/): which HF
architectures each imports, and which one a run exports to."""

from __future__ import annotations

from scaling.config import ModelConfig
from scaling.convert import bert, gpt2, gpt_neo, openai_gpt
from scaling.convert.mapping import Architecture, HFConverter
from scaling.errors import UserError


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
