"""BertForMaskedLM / BertForPreTraining / BertModel (Devlin et al. 2019) <-> the bert family.

Letter legend: V vocab, D model width, N heads, H head width, F MLP width.

HF BERT is post-LN like ours: LayerNorm(x + attention(x)), LayerNorm(h + MLP(h)), with an
embedding LayerNorm, the MLM transform (dense, activation, LayerNorm, tied decoder + bias),
the pooler (dense + tanh on [CLS]) and the NSP classifier. `nn.Linear` weights are
[out, in]. A checkpoint without some head (BertModel has no MLM head, BertForMaskedLM no
pooler or NSP) gets that head initialized as our model would; the import says which.
Export writes BertForPreTraining, which holds every head.
"""

from __future__ import annotations

import zlib

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.hf.mapping import Architecture, Rules, fresh, hf_config_value, pad_rows

ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh",
               "relu": "relu"}
EXPORT_ACTIVATIONS = {"gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}
ARCHITECTURES = ("BertForMaskedLM", "BertForPreTraining", "BertModel")


def model_fields(hf: dict) -> dict:
    act = hf_config_value(hf, "hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise UserError(f"config.json: hidden_act={act!r} is not supported; supported: "
                        f"{', '.join(ACTIVATIONS)}")
    position = hf_config_value(hf, "position_embedding_type", "absolute")
    if position != "absolute":
        raise UserError(f"config.json: position_embedding_type={position!r}; only absolute "
                        f"(learned) positions are supported")
    return dict(
        family="bert", vocab_size=hf_config_value(hf, "vocab_size", required=True),
        n_layers=hf_config_value(hf, "num_hidden_layers", required=True),
        d_model=hf_config_value(hf, "hidden_size", required=True),
        n_heads=hf_config_value(hf, "num_attention_heads", required=True),
        d_ff=hf_config_value(hf, "intermediate_size", required=True),
        max_len=hf_config_value(hf, "max_position_embeddings", required=True), norm="post",
        activation=ACTIVATIONS[act], ln_eps=float(hf_config_value(hf, "layer_norm_eps", 1e-12)),
        type_vocab_size=hf_config_value(hf, "type_vocab_size", 2),
        dropout=float(hf_config_value(hf, "hidden_dropout_prob", 0.1)),
        attn_dropout=float(hf_config_value(hf, "attention_probs_dropout_prob", 0.1)),
        init_std=float(hf_config_value(hf, "initializer_range", 0.02)),
        local_window=0, pos_emb="learned", tie_embeddings=True, scale_attn=True,
    )


def _linear(g, name: str):
    return g(name + ".weight").T  # [out, in] -> [in, out]


def _layer_rules(m: ModelConfig, l: int) -> dict:
    D, N, H = m.d_model, m.n_heads, m.d_head
    p = f"encoder.layer.{l}."
    out = {}
    for ours in ("query", "key", "value"):
        name = p + f"attention.self.{ours}"
        out[f"self_attn/{ours}/kernel"] = lambda g, n=name: _linear(g, n).reshape(D, N, H)
        out[f"self_attn/{ours}/bias"] = lambda g, n=name: g(n + ".bias").reshape(N, H)
    out.update({
        "self_attn/out/kernel": lambda g: _linear(g, p + "attention.output.dense")
        .reshape(N, H, D),
        "self_attn/out/bias": lambda g: g(p + "attention.output.dense.bias"),
        "self_attn_norm/scale": lambda g: g(p + "attention.output.LayerNorm.weight"),
        "self_attn_norm/bias": lambda g: g(p + "attention.output.LayerNorm.bias"),
        "mlp/wi/kernel": lambda g: _linear(g, p + "intermediate.dense"),  # [D, F]
        "mlp/wi/bias": lambda g: g(p + "intermediate.dense.bias"),
        "mlp/wo/kernel": lambda g: _linear(g, p + "output.dense"),  # [F, D]
        "mlp/wo/bias": lambda g: g(p + "output.dense.bias"),
        "mlp_norm/scale": lambda g: g(p + "output.LayerNorm.weight"),
        "mlp_norm/bias": lambda g: g(p + "output.LayerNorm.bias"),
    })
    return out


def _head(m: ModelConfig, ours: str, theirs: str, shape, kind: str, transform=None):
    """A head parameter: from the checkpoint when it has `theirs`, else initialized fresh
    (seeded by our path, so a conversion is reproducible)."""
    def fn(g):
        if g.has(theirs):
            x = g(theirs)
            return transform(x) if transform else x
        return fresh(shape, kind, m.init_std, zlib.crc32(ours.encode()))
    return fn


def rules(m: ModelConfig) -> Rules:
    D, Vp = m.d_model, m.padded_vocab
    e = "embeddings."
    pred = "cls.predictions."
    return Rules(
        globals={
            "token_embed/embedding": lambda g: pad_rows(g(e + "word_embeddings.weight"), Vp),
            "pos_embed/embedding": lambda g: g(e + "position_embeddings.weight"),
            "type_embed": lambda g: g(e + "token_type_embeddings.weight"),
            "embed_norm/scale": lambda g: g(e + "LayerNorm.weight"),
            "embed_norm/bias": lambda g: g(e + "LayerNorm.bias"),
            "mlm_dense/kernel": _head(m, "mlm_dense/kernel", pred + "transform.dense.weight",
                                      (D, D), "kernel", lambda x: x.T),
            "mlm_dense/bias": _head(m, "mlm_dense/bias", pred + "transform.dense.bias", (D,),
                                    "bias"),
            "mlm_norm/scale": _head(m, "mlm_norm/scale", pred + "transform.LayerNorm.weight",
                                    (D,), "scale"),
            "mlm_norm/bias": _head(m, "mlm_norm/bias", pred + "transform.LayerNorm.bias",
                                   (D,), "bias"),
            "mlm_bias": _head(m, "mlm_bias", pred + "bias", (Vp,), "bias",
                              lambda x: pad_rows(x, Vp)),
            "pooler/kernel": _head(m, "pooler/kernel", "pooler.dense.weight", (D, D),
                                   "kernel", lambda x: x.T),
            "pooler/bias": _head(m, "pooler/bias", "pooler.dense.bias", (D,), "bias"),
            "nsp/kernel": _head(m, "nsp/kernel", "cls.seq_relationship.weight", (D, 2),
                                "kernel", lambda x: x.T),
            "nsp/bias": _head(m, "nsp/bias", "cls.seq_relationship.bias", (2,), "bias"),
        },
        layer=lambda l: _layer_rules(m, l))


HEAD_TENSORS = ("cls.predictions.transform.dense.weight", "pooler.dense.weight",
                "cls.seq_relationship.weight")


def missing_heads(tensors) -> list[str]:
    """The head tensors a checkpoint lacks (initialized fresh on import)."""
    return [n for n in HEAD_TENSORS if not tensors.has(n)]


def _layer_export(m: ModelConfig, l: int) -> dict:
    D = m.d_model
    p = f"bert.encoder.layer.{l}."
    out = {}
    for ours in ("query", "key", "value"):
        name = p + f"attention.self.{ours}"
        out[name + ".weight"] = lambda o, k=ours: o(f"self_attn/{k}/kernel", l).reshape(D, D).T
        out[name + ".bias"] = lambda o, k=ours: o(f"self_attn/{k}/bias", l).reshape(D)
    out.update({
        p + "attention.output.dense.weight": lambda o: o("self_attn/out/kernel", l)
        .reshape(D, D).T,
        p + "attention.output.dense.bias": lambda o: o("self_attn/out/bias", l),
        p + "attention.output.LayerNorm.weight": lambda o: o("self_attn_norm/scale", l),
        p + "attention.output.LayerNorm.bias": lambda o: o("self_attn_norm/bias", l),
        p + "intermediate.dense.weight": lambda o: o("mlp/wi/kernel", l).T,
        p + "intermediate.dense.bias": lambda o: o("mlp/wi/bias", l),
        p + "output.dense.weight": lambda o: o("mlp/wo/kernel", l).T,
        p + "output.dense.bias": lambda o: o("mlp/wo/bias", l),
        p + "output.LayerNorm.weight": lambda o: o("mlp_norm/scale", l),
        p + "output.LayerNorm.bias": lambda o: o("mlp_norm/bias", l),
    })
    return out


def export(m: ModelConfig) -> dict:
    V = m.vocab_size
    e, pred = "bert.embeddings.", "cls.predictions."
    out = {
        e + "word_embeddings.weight": lambda o: o("token_embed/embedding")[:V],
        e + "position_embeddings.weight": lambda o: o("pos_embed/embedding"),
        e + "token_type_embeddings.weight": lambda o: o("type_embed"),
        e + "LayerNorm.weight": lambda o: o("embed_norm/scale"),
        e + "LayerNorm.bias": lambda o: o("embed_norm/bias"),
    }
    for layer in range(m.n_layers):
        out.update(_layer_export(m, layer))
    out.update({
        "bert.pooler.dense.weight": lambda o: o("pooler/kernel").T,
        "bert.pooler.dense.bias": lambda o: o("pooler/bias"),
        pred + "transform.dense.weight": lambda o: o("mlm_dense/kernel").T,
        pred + "transform.dense.bias": lambda o: o("mlm_dense/bias"),
        pred + "transform.LayerNorm.weight": lambda o: o("mlm_norm/scale"),
        pred + "transform.LayerNorm.bias": lambda o: o("mlm_norm/bias"),
        pred + "bias": lambda o: o("mlm_bias")[:V],
        "cls.seq_relationship.weight": lambda o: o("nsp/kernel").T,
        "cls.seq_relationship.bias": lambda o: o("nsp/bias"),
    })
    return out


def hf_config(m: ModelConfig, tokens: dict) -> dict:
    return {
        "architectures": ["BertForPreTraining"], "model_type": "bert",
        "vocab_size": m.vocab_size, "hidden_size": m.d_model,
        "num_hidden_layers": m.n_layers, "num_attention_heads": m.n_heads,
        "intermediate_size": m.d_ff, "hidden_act": EXPORT_ACTIVATIONS[m.activation],
        "max_position_embeddings": m.max_len, "type_vocab_size": m.type_vocab_size,
        "layer_norm_eps": m.ln_eps, "hidden_dropout_prob": m.dropout,
        "attention_probs_dropout_prob": m.attn_dropout, "initializer_range": m.init_std,
        "position_embedding_type": "absolute", "tie_word_embeddings": True, **tokens,
    }


ARCHITECTURE_LIST = tuple(Architecture(name, "bert", "bert", model_fields, rules, export,
                                       hf_config) for name in ARCHITECTURES)
