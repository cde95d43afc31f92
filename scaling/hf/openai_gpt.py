"""OpenAIGPTLMHeadModel (GPT-1, Radford et al. 2018) <-> the gpt family, post-LN.

GPT-1's block is post-LN: ln_1(x + attn(x)), then ln_2(h + mlp(h)); there is no final
LayerNorm and no embedding LayerNorm, which is our post-LN GPT exactly. Its projections are
Conv1D ([in, out]) with the names of GPT-2's, its MLP is always 4·D wide, and its "gelu" is
the tanh approximation (HF's `gelu_new`).
"""

from __future__ import annotations

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.hf.gpt2 import check_tied, conv1d_layer_export, conv1d_layer_rules
from scaling.hf.mapping import Architecture, Rules, hf_config_value, pad_rows

ACTIVATIONS = {"gelu": "gelu_tanh", "relu": "relu"}  # HF openai ACT_FNS: gelu = gelu_new
EXPORT_ACTIVATIONS = {"gelu_tanh": "gelu", "relu": "relu"}


def model_fields(hf: dict) -> dict:
    check_tied(hf)
    afn = hf_config_value(hf, "afn", "gelu")
    if afn not in ACTIVATIONS:
        raise UserError(f"config.json: afn={afn!r} is not supported; supported: "
                        f"{', '.join(ACTIVATIONS)}")
    d = hf_config_value(hf, "n_embd", required=True)
    return dict(
        family="gpt", vocab_size=hf_config_value(hf, "vocab_size", required=True),
        n_layers=hf_config_value(hf, "n_layer", required=True), d_model=d,
        n_heads=hf_config_value(hf, "n_head", required=True), d_ff=4 * d,
        max_len=hf_config_value(hf, "n_positions", required=True), norm="post",
        activation=ACTIVATIONS[afn],
        ln_eps=float(hf_config_value(hf, "layer_norm_epsilon", 1e-5)),
        dropout=float(hf_config_value(hf, "resid_pdrop", 0.1)),
        attn_dropout=float(hf_config_value(hf, "attn_pdrop", 0.1)),
        init_std=float(hf_config_value(hf, "initializer_range", 0.02)),
        local_window=0, pos_emb="learned", tie_embeddings=True, scale_attn=True,
    )


def rules(m: ModelConfig) -> Rules:
    return Rules(
        globals={
            "token_embed/embedding": lambda g: pad_rows(g("tokens_embed.weight"),
                                                        m.padded_vocab),
            "pos_embed/embedding": lambda g: g("positions_embed.weight"),
        },
        layer=lambda l: conv1d_layer_rules(m, f"h.{l}."))


def export(m: ModelConfig) -> dict:
    V, t = m.vocab_size, "transformer."
    out = {
        t + "tokens_embed.weight": lambda o: o("token_embed/embedding")[:V],
        t + "positions_embed.weight": lambda o: o("pos_embed/embedding"),
    }
    for layer in range(m.n_layers):
        out.update(conv1d_layer_export(m, f"{t}h.{layer}.", layer))
    return out


def hf_config(m: ModelConfig, tokens: dict) -> dict:
    return {
        "architectures": ["OpenAIGPTLMHeadModel"], "model_type": "openai-gpt",
        "vocab_size": m.vocab_size, "n_positions": m.max_len, "n_embd": m.d_model,
        "n_layer": m.n_layers, "n_head": m.n_heads, "afn": EXPORT_ACTIVATIONS[m.activation],
        "layer_norm_epsilon": m.ln_eps, "resid_pdrop": m.dropout, "embd_pdrop": m.dropout,
        "attn_pdrop": m.attn_dropout, "initializer_range": m.init_std,
        "tie_word_embeddings": True, **tokens,
    }


def exportable(m: ModelConfig) -> str:
    """'' when `m` fits GPT-1's fixed shape, else why not."""
    if m.d_ff != 4 * m.d_model:
        return f"GPT-1's MLP is 4·d_model wide, this run's d_ff is {m.d_ff}"
    if m.activation not in EXPORT_ACTIVATIONS:
        return f"GPT-1 has no {m.activation} activation"
    return ""


ARCHITECTURE = Architecture("OpenAIGPTLMHeadModel", "gpt", "openai-gpt", model_fields, rules,
                            export, hf_config)
