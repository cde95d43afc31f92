"""Parameter and FLOP accounting for the Transformer family, and token/step/epoch conversions.

Conventions (Kaplan et al. 2020 §2.1 and Table 1; Hoffmann et al. 2022 "Chinchilla" §3):

- N counts parameters exactly as the models create them (`jax.eval_shape` of the init agrees).
  "Embedding" parameters are the lookup tables: token, learned position and segment (type)
  embeddings. Kaplan et al. fit their laws on the non-embedding count, total - embedding.
- Training FLOPs per token = 6 x (matmul weights applied at every position) + attention.
  The factor 6 is 2 (multiply-add) x 3 (forward, plus a backward pass twice as costly).
  Biases, norms and nonlinearities are ignored, as in Kaplan Table 1.
- Attention scores QK^T and the weighted sum AV cost 2 * d_model FLOPs each per (query, key)
  pair forward, so 12 * d_model * T_eff per layer per token for training, where T_eff is the
  average number of keys a query sees. Causal self-attention uses the halved convention
  T_eff = T / 2 (the exact mean is (T + 1) / 2); bidirectional attention uses T_eff = T.
- Local (banded) attention of width r = `model.local_window`: query i sees key j when
  |i - j| < r (and j <= i when causal), i.e. r keys including itself for causal layers.
  Layer l (0-based, within its stack) is banded when l % local_every == 1 (GPT-3 §2.1
  alternates dense and locally banded layers). T_eff there is the exact mean over the T
  queries of the keys each sees.
- encdec counts per position with source and target both seq_len long: each position passes
  through the encoder and the decoder.
"""

from __future__ import annotations

import math

import numpy as np

from scaling.config import ModelConfig
from scaling.errors import UserError

# ---------------------------------------------------------------------------------------------
# Parameter counts.


def _layer_norm(d: int) -> int:
    return 2 * d  # scale [D] + bias [D]


def _attention_params(m: ModelConfig) -> int:
    """q, k, v kernels [D, N, H] with biases [N, H]; output kernel [N, H, D] with bias [D]."""
    d, nh = m.d_model, m.n_heads * m.d_head
    return 3 * (d * nh + nh) + nh * d + d


def _mlp_params(m: ModelConfig) -> int:
    """wi [D, F] + bias [F]; wo [F, D] + bias [D]."""
    return m.d_model * m.d_ff + m.d_ff + m.d_ff * m.d_model + m.d_model


def _encoder_layer_params(m: ModelConfig) -> int:
    """Self-attention + MLP + two LayerNorms (before or after each sublayer)."""
    return _attention_params(m) + _mlp_params(m) + 2 * _layer_norm(m.d_model)


def _decoder_layer_params(m: ModelConfig) -> int:
    """Self-attention + cross-attention + MLP + three LayerNorms."""
    return 2 * _attention_params(m) + _mlp_params(m) + 3 * _layer_norm(m.d_model)


def _embedding_params(m: ModelConfig) -> int:
    """Lookup tables: token [V, D] (V padded, `padded_vocab`), learned positions [max_len, D],
    bert segments [S, D]."""
    d = m.d_model
    n = m.padded_vocab * d
    if m.pos_emb == "learned":
        n += m.max_len * d
    if m.family == "bert":
        n += m.type_vocab_size * d
    return n


def _head_params(m: ModelConfig) -> int:
    """Everything outside the layer stacks and the embedding tables."""
    d, v = m.d_model, m.padded_vocab
    n = 0 if m.tie_embeddings else d * v  # untied LM head: kernel [D, V], no bias
    if m.family == "bert":
        n += _layer_norm(d)  # embedding LayerNorm
        n += d * d + d  # pooler Dense
        n += d * d + d + _layer_norm(d) + v  # MLM transform, its LayerNorm, output bias [V]
        n += d * 2 + 2  # NSP classifier
    if m.norm == "pre":
        stacks = 2 if m.family == "encdec" else 1
        n += stacks * _layer_norm(d)  # final LayerNorm after each stack
    return n


def _stack_params(m: ModelConfig) -> int:
    n = m.n_layers * _encoder_layer_params(m)
    if m.family == "encdec":
        n += m.n_decoder_layers * _decoder_layer_params(m)
    return n


def _check_family(m: ModelConfig) -> None:
    if m.family not in ("gpt", "bert", "encdec"):
        raise UserError(f"model.family={m.family!r}: expected one of gpt, bert, encdec")


def param_counts(model: ModelConfig) -> dict:
    """Total, embedding and non-embedding parameter counts of `model` (Kaplan et al. §2.1).

    `embedding` = token + learned position + segment tables; `non_embedding` = total - that,
    the N of Kaplan et al.'s laws. An untied LM head kernel counts as non-embedding.
    """
    _check_family(model)
    embedding = _embedding_params(model)
    total = embedding + _stack_params(model) + _head_params(model)
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


# ---------------------------------------------------------------------------------------------
# FLOPs per token.


def _matmul_weights(m: ModelConfig) -> int:
    """Kernels applied at every position, excluding the LM head (Kaplan Table 1).

    The bert pooler and NSP classifier act once per sequence and are left out; its MLM
    transform counts, as the heads compute logits at every position.
    """
    d, nh, f = m.d_model, m.n_heads * m.d_head, m.d_ff
    attn, mlp = 4 * d * nh, 2 * d * f
    n = m.n_layers * (attn + mlp)
    if m.family == "encdec":
        n += m.n_decoder_layers * (2 * attn + mlp)
    if m.family == "bert":
        n += d * d
    return n


def mean_keys_per_query(seq_len: int, causal: bool, window: int = 0) -> float:
    """Average number of keys a query sees: T/2 causal (halved convention), T bidirectional;
    with a band of width `window` > 0, the exact mean under band (& causal) masks."""
    t = seq_len
    if window <= 0:
        return t / 2 if causal else float(t)
    i = np.arange(t, dtype=np.int64)
    before = np.minimum(i, window - 1)  # keys j < i inside the band
    after = 0 if causal else np.minimum(t - 1 - i, window - 1)
    return float(np.sum(before + after + 1)) / t


def _self_attention_keys(m: ModelConfig, n_layers: int, seq_len: int, causal: bool) -> float:
    """Sum over a stack's layers of the mean keys per query."""
    total = 0.0
    for layer in range(n_layers):
        banded = m.local_window > 0 and layer % m.local_every == 1
        window = m.local_window if banded else 0
        total += mean_keys_per_query(seq_len, causal, window)
    return total


def flops_per_token(model: ModelConfig, seq_len: int) -> dict:
    """Training FLOPs per token: `dense` + `attention` = `total` (see the module docstring).

    dense = 6 x (non-embedding matmul kernels + the LM head V*D) (Kaplan Table 1, C = 6N);
    attention = 12 * d_model * sum over layers of T_eff, T_eff = seq_len / 2 for causal
    self-attention (halved convention), seq_len for bidirectional and cross attention, the
    band-mask mean for local layers.
    """
    _check_family(model)
    _check_positive(seq_len=seq_len)
    m = model
    dense = 6 * (_matmul_weights(m) + m.vocab_size * m.d_model)
    causal = m.family == "gpt"
    keys = _self_attention_keys(m, m.n_layers, seq_len, causal)
    if m.family == "encdec":
        keys += _self_attention_keys(m, m.n_decoder_layers, seq_len, causal=True)
        keys += m.n_decoder_layers * float(seq_len)  # cross-attention sees the whole source
    attention = 12 * m.d_model * keys
    return {"dense": float(dense), "attention": attention, "total": dense + attention}


def kaplan_flops_per_token(model: ModelConfig, seq_len: int) -> float:
    """Forward FLOPs per token, Kaplan et al. 2020 Table 1: 2 N + 2 n_layer n_ctx d_model.

    N is the non-embedding count; attention is not halved for causal masks. Training costs
    about three times this. For encdec n_layer counts encoder and decoder layers.
    """
    _check_positive(seq_len=seq_len)
    n = param_counts(model)["non_embedding"]
    n_layer = model.n_layers + (model.n_decoder_layers if model.family == "encdec" else 0)
    return float(2 * n + 2 * n_layer * seq_len * model.d_model)


# ---------------------------------------------------------------------------------------------
# Compute and token bookkeeping.


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise UserError(f"{name}={value}: must be positive")


def training_flops(n_params: float, n_tokens: float) -> float:
    """C = 6 N D, training compute of an N-parameter model on D tokens (Kaplan §2.1;
    Chinchilla §3 uses the same approximation)."""
    _check_positive(n_params=n_params, n_tokens=n_tokens)
    return 6.0 * n_params * n_tokens


def tokens_for_compute(compute: float, n_params: float) -> float:
    """D = C / (6 N): the tokens an N-parameter model sees with C training FLOPs."""
    _check_positive(compute=compute, n_params=n_params)
    return compute / (6.0 * n_params)


def tokens_per_step(global_batch: int, seq_len: int) -> int:
    """Tokens per optimizer step: sequences per step x their length."""
    _check_positive(global_batch=global_batch, seq_len=seq_len)
    return int(global_batch) * int(seq_len)


def steps_for_tokens(n_tokens: float, global_batch: int, seq_len: int) -> int:
    """Optimizer steps needed to see at least `n_tokens` tokens (rounded up)."""
    _check_positive(n_tokens=n_tokens)
    return math.ceil(n_tokens / tokens_per_step(global_batch, seq_len))


def tokens_for_steps(steps: int, global_batch: int, seq_len: int) -> int:
    """Tokens seen in `steps` optimizer steps."""
    _check_positive(steps=steps)
    return int(steps) * tokens_per_step(global_batch, seq_len)


def epochs(n_tokens: float, dataset_tokens: float) -> float:
    """Passes over a dataset of `dataset_tokens` tokens made by training on `n_tokens`."""
    _check_positive(n_tokens=n_tokens, dataset_tokens=dataset_tokens)
    return n_tokens / dataset_tokens
