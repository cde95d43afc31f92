"""The whole GPT forward pass against a NumPy transcription of GPT-2 (Radford et al. 2019
§2.3 and the released model's math: pre-LN blocks, tanh-GELU MLP, learned positions, a final
LayerNorm and logits tied to the token embedding) and of GPT-1's post-LN variant."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models import gpt

MODEL = ModelConfig(vocab_size=50, n_layers=2, d_model=16, n_heads=4, d_ff=64, max_len=12,
                    dropout=0.0, attn_dropout=0.0, dtype="float32", vocab_multiple=1)


def np_layer_norm(x, p, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * p["scale"] + p["bias"]


def np_gelu(x):  # GPT-2's tanh approximation
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def np_attention(x, p, n_heads):
    T, D = x.shape
    H = D // n_heads
    q, k, v = (np.einsum("td,dnh->nth", x, p[n]["kernel"]) + p[n]["bias"].reshape(n_heads, 1, H)
               for n in ("query", "key", "value"))
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(H)  # [N, T, T]
    scores = np.where(np.tril(np.ones((T, T), bool)), scores, -np.inf)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    heads = w @ v  # [N, T, H]
    return np.einsum("nth,nhd->td", heads, p["out"]["kernel"]) + p["out"]["bias"]


def np_gpt(ids, params, m):
    """Logits [T, V] for one sequence, written from the papers, not from our modules."""
    x = params["token_embed"]["embedding"][ids] + params["pos_embed"]["embedding"][:len(ids)]
    for l in range(m.n_layers):
        p = jax.tree.map(lambda a, l=l: a[l], params["decoder"]["layers"])

        def attn(h, p=p):
            return np_attention(h, p["self_attn"], m.n_heads)

        def mlp(h, p=p):
            hidden = np_gelu(h @ p["mlp"]["wi"]["kernel"] + p["mlp"]["wi"]["bias"])
            return hidden @ p["mlp"]["wo"]["kernel"] + p["mlp"]["wo"]["bias"]

        for fn, norm in ((attn, "self_attn_norm"), (mlp, "mlp_norm")):
            if m.norm == "pre":  # GPT-2: x + f(LN(x))
                x = x + fn(np_layer_norm(x, p[norm], m.ln_eps))
            else:  # GPT-1 / Vaswani: LN(x + f(x))
                x = np_layer_norm(x + fn(x), p[norm], m.ln_eps)
    if m.norm == "pre":
        x = np_layer_norm(x, params["final_norm"], m.ln_eps)
    return x @ params["token_embed"]["embedding"].T


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_gpt_forward_matches_numpy(norm):
    m = dataclasses.replace(MODEL, norm=norm)
    ids = np.random.default_rng(0).integers(0, m.vocab_size, (2, 12)).astype(np.int32)
    params = nn.unbox(gpt.GPT(m).init(jax.random.key(0), jnp.asarray(ids))["params"])
    # random biases and norm parameters, so that every term is exercised
    r = np.random.default_rng(1)
    params = jax.tree.map(lambda a: np.asarray(a, np.float64) + 0.1 * r.normal(size=a.shape),
                          params)
    got = np.asarray(gpt.GPT(m).apply(
        {"params": jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)},
        jnp.asarray(ids)))
    for b in range(2):
        np.testing.assert_allclose(got[b], np_gpt(ids[b], params, m), rtol=1e-4, atol=1e-4)
