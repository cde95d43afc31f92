"""GPT2LMHeadModel (Radford et al. 2019) <-> the gpt family, pre-LN.

Letter legend: V vocab, D model width, N heads, H head width, F MLP width.

HF GPT-2 keeps its projections in `Conv1D` modules whose weights are [in, out] (the
transpose of `nn.Linear`), with query, key and value in one [D, 3D] matrix `c_attn`.
"""

from __future__ import annotations

import numpy as np

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.hf.mapping import Architecture, Rules, hf_config_value, pad_rows

# HF activation names -> model.activation ("gelu_new" is the tanh approximation)
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu",
               "relu": "relu"}
EXPORT_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}


def activation(name: str, where: str) -> str:
    if name not in ACTIVATIONS:
        raise UserError(f"config.json: {where}={name!r} is not supported; supported: "
                        f"{', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def check_tied(hf: dict) -> None:
    if hf.get("tie_word_embeddings", True) is False:
        raise UserError("config.json: tie_word_embeddings=false; the converter handles models "
                        "whose output layer is the token embedding (tied), as released")


def model_fields(hf: dict) -> dict:
    check_tied(hf)
    for flag in ("scale_attn_by_inverse_layer_idx",):
        if hf.get(flag):
            raise UserError(f"config.json: {flag}=true is not supported by our attention")
    if hf.get("scale_attn_weights") is False:
        raise UserError("config.json: scale_attn_weights=false is not supported for GPT-2")
    d = hf_config_value(hf, "n_embd", required=True)
    return dict(
        family="gpt", vocab_size=hf_config_value(hf, "vocab_size", required=True),
        n_layers=hf_config_value(hf, "n_layer", required=True), d_model=d,
        n_heads=hf_config_value(hf, "n_head", required=True),
        d_ff=hf_config_value(hf, "n_inner", 4 * d),
        max_len=hf_config_value(hf, "n_positions", required=True), norm="pre",
        activation=activation(hf_config_value(hf, "activation_function", "gelu_new"),
                              "activation_function"),
        ln_eps=float(hf_config_value(hf, "layer_norm_epsilon", 1e-5)),
        dropout=float(hf_config_value(hf, "resid_pdrop", 0.1)),
        attn_dropout=float(hf_config_value(hf, "attn_pdrop", 0.1)),
        init_std=float(hf_config_value(hf, "initializer_range", 0.02)),
        local_window=0, pos_emb="learned", tie_embeddings=True, scale_attn=True,
    )


def conv1d_layer_rules(m: ModelConfig, prefix: str) -> dict:
    """One layer of Conv1D blocks (GPT-2 and GPT-1 share the names): `prefix` is "h.{l}."."""
    D, N, H = m.d_model, m.n_heads, m.d_head
    p = prefix

    def qkv(i):  # i-th third of c_attn: [D, 3D] -> [D, N, H]
        return {"kernel": lambda g: g(p + "attn.c_attn.weight")[:, i * D:(i + 1) * D]
                .reshape(D, N, H),
                "bias": lambda g: g(p + "attn.c_attn.bias")[i * D:(i + 1) * D].reshape(N, H)}

    rules = {}
    for i, name in enumerate(("query", "key", "value")):
        for leaf, fn in qkv(i).items():
            rules[f"self_attn/{name}/{leaf}"] = fn
    rules.update({
        "self_attn/out/kernel": lambda g: g(p + "attn.c_proj.weight").reshape(N, H, D),
        "self_attn/out/bias": lambda g: g(p + "attn.c_proj.bias"),
        "self_attn_norm/scale": lambda g: g(p + "ln_1.weight"),
        "self_attn_norm/bias": lambda g: g(p + "ln_1.bias"),
        "mlp/wi/kernel": lambda g: g(p + "mlp.c_fc.weight"),  # [D, F]
        "mlp/wi/bias": lambda g: g(p + "mlp.c_fc.bias"),
        "mlp/wo/kernel": lambda g: g(p + "mlp.c_proj.weight"),  # [F, D]
        "mlp/wo/bias": lambda g: g(p + "mlp.c_proj.bias"),
        "mlp_norm/scale": lambda g: g(p + "ln_2.weight"),
        "mlp_norm/bias": lambda g: g(p + "ln_2.bias"),
    })
    return rules


def conv1d_layer_export(m: ModelConfig, prefix: str, layer: int) -> dict:
    """The inverse of `conv1d_layer_rules`: HF names of layer `layer` -> fn(ours)."""
    D, p, L = m.d_model, prefix, layer

    def qkv(leaf, shape):
        return lambda o: np.concatenate(
            [o(f"self_attn/{n}/{leaf}", L).reshape(shape) for n in ("query", "key", "value")],
            axis=-1)

    out = {
        p + "attn.c_attn.weight": qkv("kernel", (D, D)),  # [D, 3D]
        p + "attn.c_attn.bias": qkv("bias", (D,)),  # [3D]
        p + "attn.c_proj.weight": lambda o: o("self_attn/out/kernel", L).reshape(D, D),
        p + "attn.c_proj.bias": lambda o: o("self_attn/out/bias", L),
        p + "ln_1.weight": lambda o: o("self_attn_norm/scale", L),
        p + "ln_1.bias": lambda o: o("self_attn_norm/bias", L),
        p + "mlp.c_fc.weight": lambda o: o("mlp/wi/kernel", L),
        p + "mlp.c_fc.bias": lambda o: o("mlp/wi/bias", L),
        p + "mlp.c_proj.weight": lambda o: o("mlp/wo/kernel", L),
        p + "mlp.c_proj.bias": lambda o: o("mlp/wo/bias", L),
        p + "ln_2.weight": lambda o: o("mlp_norm/scale", L),
        p + "ln_2.bias": lambda o: o("mlp_norm/bias", L),
    }
    return out


def rules(m: ModelConfig) -> Rules:
    return Rules(
        globals={
            "token_embed/embedding": lambda g: pad_rows(g("wte.weight"), m.padded_vocab),
            "pos_embed/embedding": lambda g: g("wpe.weight"),
            "final_norm/scale": lambda g: g("ln_f.weight"),
            "final_norm/bias": lambda g: g("ln_f.bias"),
        },
        layer=lambda l: conv1d_layer_rules(m, f"h.{l}."))


def export(m: ModelConfig) -> dict:
    V, t = m.vocab_size, "transformer."
    out = {
        t + "wte.weight": lambda o: o("token_embed/embedding")[:V],
        t + "wpe.weight": lambda o: o("pos_embed/embedding"),
    }
    for layer in range(m.n_layers):
        out.update(conv1d_layer_export(m, f"{t}h.{layer}.", layer))
    out[t + "ln_f.weight"] = lambda o: o("final_norm/scale")
    out[t + "ln_f.bias"] = lambda o: o("final_norm/bias")
    return out


def hf_config(m: ModelConfig, tokens: dict) -> dict:
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": m.vocab_size, "n_positions": m.max_len, "n_embd": m.d_model,
        "n_layer": m.n_layers, "n_head": m.n_heads, "n_inner": m.d_ff,
        "activation_function": EXPORT_ACTIVATIONS[m.activation],
        "layer_norm_epsilon": m.ln_eps, "resid_pdrop": m.dropout, "embd_pdrop": m.dropout,
        "attn_pdrop": m.attn_dropout, "initializer_range": m.init_std,
        "scale_attn_weights": True, "tie_word_embeddings": True, **tokens,
    }


ARCHITECTURE = Architecture("GPT2LMHeadModel", "gpt", "gpt2", model_fields, rules, export,
                            hf_config)
