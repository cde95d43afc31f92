"""GPTNeoForCausalLM (GPT-3-style alternating global and local attention) <-> the gpt family.

Letter legend: D model width, N heads, H head width, F MLP width.

GPT-Neo's layers follow `attention_types` (e.g. [[["global", "local"], 12]]); a local layer
lets query i see keys j with 0 <= i - j < window_size (the causal mask XOR its part below
diagonal -window_size, modeling_gpt_neo.py), which is our band |t - s| < r with
r = window_size under the causal mask. Our banded layers are those with l % local_every == 1
(scaling/models/bands.py), so "global, local" alternation is local_every = 2 and all-local
local_every = 1. GPT-Neo does not scale attention logits by 1/√H: model.scale_attn = false.
Its q/k/v projections have no bias (ours are zero); `nn.Linear` weights are [out, in].
"""

from __future__ import annotations

import numpy as np

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.hf.gpt2 import EXPORT_ACTIVATIONS, activation, check_tied
from scaling.hf.mapping import Architecture, Rules, hf_config_value, pad_rows

DEFAULT_WINDOW = 256


def band_pattern(layers: list[str], window: int) -> dict:
    """local_window/local_every for GPT-Neo's expanded per-layer attention types."""
    n = len(layers)
    if all(t == "global" for t in layers):
        return {"local_window": 0, "local_every": 2}
    if all(t == "local" for t in layers):
        return {"local_window": window, "local_every": 1}
    alternating = ["global" if i % 2 == 0 else "local" for i in range(n)]
    if layers == alternating:
        return {"local_window": window, "local_every": 2}
    raise UserError(f"config.json: attention layers {layers} are not representable; our banded "
                    f"layers are all, none, or every second one starting with layer 1 "
                    f"(global, local, global, ...)")


def model_fields(hf: dict) -> dict:
    check_tied(hf)
    n = hf_config_value(hf, "num_layers", required=True)
    types = hf_config_value(hf, "attention_types", [[["global", "local"], n // 2]])
    layers = [t for pattern, times in types for _ in range(times) for t in pattern]
    if len(layers) != n:
        raise UserError(f"config.json: attention_types expands to {len(layers)} layers, "
                        f"num_layers is {n}")
    d = hf_config_value(hf, "hidden_size", required=True)
    window = hf_config_value(hf, "window_size", DEFAULT_WINDOW)
    return dict(
        family="gpt", vocab_size=hf_config_value(hf, "vocab_size", required=True),
        n_layers=n, d_model=d, n_heads=hf_config_value(hf, "num_heads", required=True),
        d_ff=hf_config_value(hf, "intermediate_size", 4 * d),
        max_len=hf_config_value(hf, "max_position_embeddings", required=True), norm="pre",
        activation=activation(hf_config_value(hf, "activation_function", "gelu_new"),
                              "activation_function"),
        ln_eps=float(hf_config_value(hf, "layer_norm_epsilon", 1e-5)),
        dropout=float(hf_config_value(hf, "resid_dropout", 0.0)),
        attn_dropout=float(hf_config_value(hf, "attention_dropout", 0.0)),
        init_std=float(hf_config_value(hf, "initializer_range", 0.02)),
        pos_emb="learned", tie_embeddings=True, scale_attn=False,
        **band_pattern(layers, window),
    )


def _layer_rules(m: ModelConfig, l: int) -> dict:
    D, N, H = m.d_model, m.n_heads, m.d_head
    p, a = f"h.{l}.", f"h.{l}.attn.attention."
    out = {}
    for ours, theirs in (("query", "q_proj"), ("key", "k_proj"), ("value", "v_proj")):
        out[f"self_attn/{ours}/kernel"] = (
            lambda g, t=theirs: g(a + f"{t}.weight").T.reshape(D, N, H))
        out[f"self_attn/{ours}/bias"] = lambda g: np.zeros((N, H), np.float32)
    out.update({
        "self_attn/out/kernel": lambda g: g(a + "out_proj.weight").T.reshape(N, H, D),
        "self_attn/out/bias": lambda g: g(a + "out_proj.bias"),
        "self_attn_norm/scale": lambda g: g(p + "ln_1.weight"),
        "self_attn_norm/bias": lambda g: g(p + "ln_1.bias"),
        "mlp/wi/kernel": lambda g: g(p + "mlp.c_fc.weight").T,  # [F, D] -> [D, F]
        "mlp/wi/bias": lambda g: g(p + "mlp.c_fc.bias"),
        "mlp/wo/kernel": lambda g: g(p + "mlp.c_proj.weight").T,  # [D, F] -> [F, D]
        "mlp/wo/bias": lambda g: g(p + "mlp.c_proj.bias"),
        "mlp_norm/scale": lambda g: g(p + "ln_2.weight"),
        "mlp_norm/bias": lambda g: g(p + "ln_2.bias"),
    })
    return out


def rules(m: ModelConfig) -> Rules:
    return Rules(
        globals={
            "token_embed/embedding": lambda g: pad_rows(g("wte.weight"), m.padded_vocab),
            "pos_embed/embedding": lambda g: g("wpe.weight"),
            "final_norm/scale": lambda g: g("ln_f.weight"),
            "final_norm/bias": lambda g: g("ln_f.bias"),
        },
        layer=lambda l: _layer_rules(m, l))


def _layer_export(m: ModelConfig, l: int) -> dict:
    """GPT-Neo has no q/k/v bias. A key bias adds q·b to every logit of a query, which the
    softmax ignores; a value bias b_v adds b_v·W_o to the output (attention weights sum to
    1), folded into out_proj.bias; a query bias cannot be expressed. Our 1/√H logit scale,
    when on, is folded into the query weight."""
    D = m.d_model
    p, a = f"transformer.h.{l}.", f"transformer.h.{l}.attn.attention."
    scale = np.float32(1.0 / np.sqrt(m.d_head)) if m.scale_attn else np.float32(1.0)

    def query(o):
        if np.any(o("self_attn/query/bias", l) != 0):
            raise UserError("this run's attention has a non-zero query bias, which GPT-Neo "
                            "cannot express; export a run without banded layers (GPT-2) instead")
        w = o("self_attn/query/kernel", l).reshape(D, D)
        return (w if scale == 1 else w * scale).T

    def out_bias(o):
        b_v = o("self_attn/value/bias", l).reshape(D)
        b_o = o("self_attn/out/bias", l)
        if not np.any(b_v):
            return b_o
        return b_o + b_v @ o("self_attn/out/kernel", l).reshape(D, D)

    return {
        p + "ln_1.weight": lambda o: o("self_attn_norm/scale", l),
        p + "ln_1.bias": lambda o: o("self_attn_norm/bias", l),
        a + "q_proj.weight": query,
        a + "k_proj.weight": lambda o: o("self_attn/key/kernel", l).reshape(D, D).T,
        a + "v_proj.weight": lambda o: o("self_attn/value/kernel", l).reshape(D, D).T,
        a + "out_proj.weight": lambda o: o("self_attn/out/kernel", l).reshape(D, D).T,
        a + "out_proj.bias": out_bias,
        p + "ln_2.weight": lambda o: o("mlp_norm/scale", l),
        p + "ln_2.bias": lambda o: o("mlp_norm/bias", l),
        p + "mlp.c_fc.weight": lambda o: o("mlp/wi/kernel", l).T,
        p + "mlp.c_fc.bias": lambda o: o("mlp/wi/bias", l),
        p + "mlp.c_proj.weight": lambda o: o("mlp/wo/kernel", l).T,
        p + "mlp.c_proj.bias": lambda o: o("mlp/wo/bias", l),
    }


def export(m: ModelConfig) -> dict:
    V, t = m.vocab_size, "transformer."
    out = {t + "wte.weight": lambda o: o("token_embed/embedding")[:V],
           t + "wpe.weight": lambda o: o("pos_embed/embedding")}
    for layer in range(m.n_layers):
        out.update(_layer_export(m, layer))
    out[t + "ln_f.weight"] = lambda o: o("final_norm/scale")
    out[t + "ln_f.bias"] = lambda o: o("final_norm/bias")
    return out


def attention_types(m: ModelConfig) -> list:
    if m.local_window == 0:
        return [[["global"], m.n_layers]]
    if m.local_every == 1:
        return [[["local"], m.n_layers]]
    return [[["global", "local"], m.n_layers // 2]]


def exportable(m: ModelConfig) -> str:
    """'' when `m`'s banded layers fit GPT-Neo's attention_types, else why not."""
    if m.local_window and m.local_every not in (1, 2):
        return f"model.local_every={m.local_every}: GPT-Neo alternates every layer or none"
    if m.local_window and m.local_every == 2 and m.n_layers % 2:
        return f"{m.n_layers} layers cannot alternate global/local in GPT-Neo's pairs"
    if m.activation not in EXPORT_ACTIVATIONS:
        return f"no HF name for activation {m.activation}"
    return ""


def hf_config(m: ModelConfig, tokens: dict) -> dict:
    return {
        "architectures": ["GPTNeoForCausalLM"], "model_type": "gpt_neo",
        "vocab_size": m.vocab_size, "max_position_embeddings": m.max_len,
        "hidden_size": m.d_model, "num_layers": m.n_layers, "num_heads": m.n_heads,
        "intermediate_size": m.d_ff, "attention_types": attention_types(m),
        "window_size": m.local_window or DEFAULT_WINDOW,
        "activation_function": EXPORT_ACTIVATIONS[m.activation],
        "layer_norm_epsilon": m.ln_eps, "resid_dropout": m.dropout, "embed_dropout": m.dropout,
        "attention_dropout": m.attn_dropout, "initializer_range": m.init_std,
        "tie_word_embeddings": True, **tokens,
    }


ARCHITECTURE = Architecture("GPTNeoForCausalLM", "gpt", "gpt_neo", model_fields, rules, export,
                            hf_config)
