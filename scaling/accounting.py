"""Parameter and FLOP accounting for the Transformer family: pure arithmetic on a config.

What differs by family (which stacks, causal or not, cross-attention, segment tables, heads)
comes in as a `Layout` that the family builds (scaling/families/); nothing here imports a
model, so the train loop and the scaling-law tools both import it.

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
  Which layers are banded is decided by `scaling.models.bands.banded_layers`, the rule the
  stack itself uses (GPT-3 §2.1 alternates dense and locally banded layers). T_eff there is
  the exact mean over the T queries of the keys each sees.
- An encoder-decoder counts per position with source and target both seq_len long: each
  position passes through the encoder and the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.models.bands import banded_layers


@dataclass(frozen=True)
class StackLayout:
    """One layer stack: its depth, whether self-attention is causal, whether every layer
    also cross-attends to an encoder."""

    n_layers: int
    causal: bool
    cross: bool = False


@dataclass(frozen=True)
class Layout:
    """What a family adds around the shared blocks, as counts the accounting needs.

    head_params: parameters outside the stacks, the embedding tables, an untied LM head and
    the pre-LN final norms (e.g. BERT's pooler and MLM/NSP heads).
    head_matmul_weights: of those, the kernels applied at every position (FLOPs count them).
    """

    stacks: tuple[StackLayout, ...]
    type_embeddings: bool = False
    head_params: int = 0
    head_matmul_weights: int = 0


# ---------------------------------------------------------------------------------------------
# Parameter counts.


def layer_norm_params(d: int) -> int:
    return 2 * d  # scale [D] + bias [D]


def _attention_params(m: ModelConfig) -> int:
    """q, k, v kernels [D, N, H] with biases [N, H]; output kernel [N, H, D] with bias [D]."""
    d, nh = m.d_model, m.n_heads * m.d_head
    return 3 * (d * nh + nh) + nh * d + d


def _mlp_params(m: ModelConfig) -> int:
    """wi [D, F] + bias [F]; wo [F, D] + bias [D]."""
    return m.d_model * m.d_ff + m.d_ff + m.d_ff * m.d_model + m.d_model


def _layer_params(m: ModelConfig, cross: bool) -> int:
    """Self-attention (+ cross-attention) + MLP, and a LayerNorm before or after each."""
    attentions = 2 if cross else 1
    return (attentions * _attention_params(m) + _mlp_params(m)
            + (attentions + 1) * layer_norm_params(m.d_model))


def _embedding_params(m: ModelConfig, layout: Layout) -> int:
    """Lookup tables: token [V, D] (V padded, `padded_vocab`), learned positions [max_len, D],
    segments [type_vocab_size, D] where the family has them."""
    d = m.d_model
    n = m.padded_vocab * d
    if m.pos_emb == "learned":
        n += m.max_len * d
    if layout.type_embeddings:
        n += m.type_vocab_size * d
    return n


def _other_params(m: ModelConfig, layout: Layout) -> int:
    """Everything outside the layer stacks and the embedding tables."""
    n = layout.head_params
    if not m.tie_embeddings:
        n += m.d_model * m.padded_vocab  # untied LM head: kernel [D, V], no bias
    if m.norm == "pre":
        n += len(layout.stacks) * layer_norm_params(m.d_model)  # a final norm per stack
    return n


def param_counts(model: ModelConfig, layout: Layout) -> dict:
    """Total, embedding and non-embedding parameter counts of `model` (Kaplan et al. §2.1).

    `embedding` = token + learned position + segment tables; `non_embedding` = total - that,
    the N of Kaplan et al.'s laws. An untied LM head kernel counts as non-embedding.
    """
    embedding = _embedding_params(model, layout)
    stacks = sum(s.n_layers * _layer_params(model, s.cross) for s in layout.stacks)
    total = embedding + stacks + _other_params(model, layout)
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}


# ---------------------------------------------------------------------------------------------
# FLOPs per token.


def _matmul_weights(m: ModelConfig, layout: Layout) -> int:
    """Kernels applied at every position, excluding the LM head (Kaplan Table 1)."""
    d, nh, f = m.d_model, m.n_heads * m.d_head, m.d_ff
    attn, mlp = 4 * d * nh, 2 * d * f
    n = sum(s.n_layers * ((2 if s.cross else 1) * attn + mlp) for s in layout.stacks)
    return n + layout.head_matmul_weights


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


def _attention_keys(m: ModelConfig, stack: StackLayout, seq_len: int) -> float:
    """Sum over a stack's layers of the mean keys per query (self, plus cross-attention,
    which sees the whole source of seq_len positions)."""
    banded = banded_layers(m.local_window, m.local_every, stack.n_layers)
    total = sum(mean_keys_per_query(seq_len, stack.causal, m.local_window if b else 0)
                for b in banded)
    if stack.cross:
        total += stack.n_layers * float(seq_len)
    return total


def flops_per_token(model: ModelConfig, layout: Layout, seq_len: int) -> dict:
    """Training FLOPs per token: `dense` + `attention` = `total` (see the module docstring).

    dense = 6 x (non-embedding matmul kernels + the LM head V*D) (Kaplan Table 1, C = 6N);
    attention = 12 * d_model * sum over layers of T_eff, T_eff = seq_len / 2 for causal
    self-attention (halved convention), seq_len for bidirectional and cross attention, the
    band-mask mean for local layers.
    """
    check_positive(seq_len=seq_len)
    m = model
    dense = 6 * (_matmul_weights(m, layout) + m.vocab_size * m.d_model)
    keys = sum(_attention_keys(m, s, seq_len) for s in layout.stacks)
    attention = 12 * m.d_model * keys
    return {"dense": float(dense), "attention": attention, "total": dense + attention}


def kaplan_flops_per_token(model: ModelConfig, layout: Layout, seq_len: int) -> float:
    """Forward FLOPs per token, Kaplan et al. 2020 Table 1: 2 N + 2 n_layer n_ctx d_model.

    N is the non-embedding count; attention is not halved for causal masks. Training costs
    about three times this. n_layer counts the layers of every stack (encoder + decoder).
    """
    check_positive(seq_len=seq_len)
    n = param_counts(model, layout)["non_embedding"]
    n_layer = sum(s.n_layers for s in layout.stacks)
    return float(2 * n + 2 * n_layer * seq_len * model.d_model)


def check_positive(**values: float) -> None:
    """UserError naming the first value that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise UserError(f"{name}={value}: must be positive")


# ---------------------------------------------------------------------------------------------
# Pipeline parallelism.


def bubble_fraction(stages: int, microbatches: int) -> float:
    """Share of a GPipe step each stage idles: (S - 1) / (M + S - 1) (Huang et al. 2019,
    §2.3): M microbatches take M + S - 1 ticks, of which each stage works M. MFU counts the
    bubble as lost time (model FLOPs over wall time), so it caps MFU at 1 - bubble."""
    check_positive(stages=stages, microbatches=microbatches)
    return (stages - 1) / (microbatches + stages - 1)
