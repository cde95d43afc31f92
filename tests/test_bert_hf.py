"""BERT's forward pass against HuggingFace's `BertForPreTraining` as the oracle: the same
random weights (drawn large, std 0.2, so that an activation or layout mismatch shows) give
the same MLM and NSP logits to 1e-4 in float32, with padding and sentence types in the batch;
the tanh-approximated GELU is shown to miss by far more.

The weight mapping below is test-local (an oracle, not the converter of scaling/hf/).
Letter legend: L layers, D width, N heads, H head width, F MLP width, V vocab.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models.bert import BERT

V, D, N, F, LAYERS, MAX_POS = 100, 64, 4, 256, 2, 64
STD = 0.2  # every weight N(0, STD), LayerNorm scales N(1, STD): gelu_tanh then misses


def _model(activation: str = "gelu") -> ModelConfig:
    return ModelConfig(family="bert", vocab_size=V, n_layers=LAYERS, d_model=D, n_heads=N,
                       d_ff=F, max_len=MAX_POS, norm="post", ln_eps=1e-12,
                       activation=activation, dropout=0.0, attn_dropout=0.0, dtype="float32")


@pytest.fixture(scope="module")
def hf_bert():
    config = transformers.BertConfig(
        vocab_size=V, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=N,
        intermediate_size=F, max_position_embeddings=MAX_POS, type_vocab_size=2,
        hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-12)
    torch.manual_seed(0)
    model = transformers.BertForPreTraining(config).eval()
    model.set_attn_implementation("eager")
    with torch.no_grad():  # tied tensors (decoder = word embeddings) stay tied
        for name, p in model.named_parameters():
            p.normal_(1.0 if name.endswith("LayerNorm.weight") else 0.0, STD)
    return model


def _linear(sd, name, heads_in=False, heads_out=False):
    """A torch Linear [out, in] as our kernel [in, out] (heads split where asked) and bias."""
    w, b = sd[f"{name}.weight"].T, sd[f"{name}.bias"]  # [in, out], [out]
    if heads_out:
        w, b = w.reshape(D, N, D // N), b.reshape(N, D // N)  # [D, N, H], [N, H]
    if heads_in:
        w = w.reshape(N, D // N, D)  # [N, H, D]
    return {"kernel": w, "bias": b}


def _norm(sd, name):
    return {"scale": sd[f"{name}.weight"], "bias": sd[f"{name}.bias"]}


def _layers(sd) -> dict:
    """The encoder layers, stacked on a leading L axis as our scanned stack keeps them."""
    per_layer = []
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}"
        per_layer.append({
            "self_attn": {
                "query": _linear(sd, f"{p}.attention.self.query", heads_out=True),
                "key": _linear(sd, f"{p}.attention.self.key", heads_out=True),
                "value": _linear(sd, f"{p}.attention.self.value", heads_out=True),
                "out": _linear(sd, f"{p}.attention.output.dense", heads_in=True),
            },
            "self_attn_norm": _norm(sd, f"{p}.attention.output.LayerNorm"),
            "mlp": {"wi": _linear(sd, f"{p}.intermediate.dense"),
                    "wo": _linear(sd, f"{p}.output.dense")},
            "mlp_norm": _norm(sd, f"{p}.output.LayerNorm"),
        })
    return jax.tree.map(lambda *xs: np.stack(xs), *per_layer)


def hf_to_ours(model, padded_vocab: int) -> dict:
    """Our BERT parameters holding the HF model's weights (padding vocab rows zero)."""
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    table = np.zeros((padded_vocab, D), np.float32)
    table[:V] = sd["bert.embeddings.word_embeddings.weight"]
    bias = np.zeros(padded_vocab, np.float32)
    bias[:V] = sd["cls.predictions.bias"]
    return {
        "token_embed": {"embedding": table},
        "pos_embed": {"embedding": sd["bert.embeddings.position_embeddings.weight"]},
        "type_embed": sd["bert.embeddings.token_type_embeddings.weight"],
        "embed_norm": _norm(sd, "bert.embeddings.LayerNorm"),
        "encoder": {"layers": _layers(sd)},
        "mlm_dense": _linear(sd, "cls.predictions.transform.dense"),
        "mlm_norm": _norm(sd, "cls.predictions.transform.LayerNorm"),
        "mlm_bias": bias,
        "pooler": _linear(sd, "bert.pooler.dense"),
        "nsp": _linear(sd, "cls.seq_relationship"),
    }


@pytest.fixture(scope="module")
def batch():
    """Two pairs `[CLS] A [SEP] B [SEP]`, the second padded (attention_mask 0)."""
    rng = np.random.default_rng(0)
    T, real = 24, (24, 15)
    ids = rng.integers(7, V, (2, T)).astype(np.int32)
    mask, types = np.zeros((2, T), np.int32), np.zeros((2, T), np.int32)
    for r, n in enumerate(real):
        a = n // 2
        ids[r, 0], ids[r, a], ids[r, n - 1] = 5, 6, 6  # [CLS] ... [SEP] ... [SEP]
        ids[r, n:] = 0
        mask[r, :n], types[r, a + 1 : n] = 1, 1
    return ids, types, mask


def _ours(hf_bert, batch, activation: str):
    ids, types, mask = batch
    m = _model(activation)
    positions = np.broadcast_to(np.arange(ids.shape[1], dtype=np.int32), ids.shape)
    module = BERT(m)
    init = jax.eval_shape(lambda: module.init(jax.random.key(0), ids, types, positions, mask))
    params = hf_to_ours(hf_bert, m.padded_vocab)
    shapes = jax.tree.map(lambda a: a.shape, nn.unbox(init)["params"])
    assert jax.tree.map(np.shape, params) == shapes  # the mapping covers every parameter
    mlm, nsp = module.apply({"params": jax.tree.map(jnp.asarray, params)}, ids, types,
                            positions, mask)
    return np.asarray(mlm)[..., :V], np.asarray(nsp)  # our vocab is padded: first V logits


@pytest.fixture(scope="module")
def hf_logits(hf_bert, batch):
    ids, types, mask = batch
    with torch.no_grad():
        out = hf_bert(input_ids=torch.tensor(ids, dtype=torch.long),
                      token_type_ids=torch.tensor(types, dtype=torch.long),
                      attention_mask=torch.tensor(mask, dtype=torch.long))
    return out.prediction_logits.numpy(), out.seq_relationship_logits.numpy()


def test_mlm_and_nsp_logits_match_huggingface(hf_bert, batch, hf_logits):
    mlm, nsp = _ours(hf_bert, batch, "gelu")
    real = batch[2] == 1  # padded positions' outputs are never used
    assert np.abs(hf_logits[0]).max() > 1.0  # the weights are large enough to matter
    np.testing.assert_allclose(mlm[real], hf_logits[0][real], atol=1e-4, rtol=0)
    np.testing.assert_allclose(nsp, hf_logits[1], atol=1e-4, rtol=0)


def test_the_tanh_gelu_would_fail_the_comparison(hf_bert, batch, hf_logits):
    mlm, _ = _ours(hf_bert, batch, "gelu_tanh")
    real = batch[2] == 1
    assert np.abs(mlm[real] - hf_logits[0][real]).max() > 1e-3
