"""Task heads on the pretrained backbones (fine-tuning; README "Fine-tuning").

A head adds parameters under `head/`; the backbone's parameters sit under `backbone/` with
exactly the tree the pretraining run saved, so `--init_from` restores them as they are.

    BERT (Devlin et al. 2019 §4): a linear layer on the pooled [CLS] state (the pooler as
        published: tanh(W·h_[CLS] + b)), after dropout.
    GPT-1 (Radford et al. 2018 §3.3): a linear layer on the final state of the extract
        token (the last real token of a row); the tied LM logits come back too, for the
        auxiliary LM loss.

Multiple choice: a row of T tokens holds the C choices side by side, each T/C long (choice c
at positions [c·T/C, (c+1)·T/C)); each choice is encoded on its own and scored by the
head's one output, and the C scores are the logits of a softmax across choices (BERT's
SWAG, GPT-1's RACE/story cloze).

Letter legend: B batch, C choices, T length (of a whole row), S = T / C, D model width,
K head outputs (classes, or 1), V vocab.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.models.bert import BERT
from scaling.models.gpt import GPT
from scaling.models.layers import dtype_of
from scaling.models.linear import Linear


def _head(model: ModelConfig, outputs: int) -> Linear:
    return Linear("BD,DK->BK", (model.d_model, outputs), ("embed", None), (None,),
                  model.init_std, dtype_of(model), name="head")


def split_choices(x, choices: int):
    """[B, T] -> [B·C, T/C]: each choice its own row (a remainder T mod C is dropped)."""
    if choices <= 1:
        return x
    B, T = x.shape
    S = T // choices
    return x[:, : S * choices].reshape(B * choices, S)


def last_real(segment_ids):
    """[B, T] -> [B] index of each row's last real token (the extract token)."""
    T = segment_ids.shape[-1]
    return jnp.max(jnp.where(segment_ids > 0, jnp.arange(T), 0), axis=-1)


class BertTaskModel(nn.Module):
    """BERT backbone + a linear head on the pooled [CLS] state. Returns float32 [B, K], or
    [B, C] for multiple choice (K = 1 then)."""

    model: ModelConfig
    outputs: int  # K
    choices: int = 0  # C; 0 = one sequence per example
    deterministic: bool = True
    implementation: str = "xla"

    @nn.compact
    def __call__(self, inputs, type_ids, positions, segment_ids):
        m, C = self.model, self.choices
        args = [split_choices(a, C) for a in (inputs, type_ids, positions, segment_ids)]
        _, _, pooled = BERT(m, self.deterministic, self.implementation, features=True,
                            name="backbone")(*args)  # [B·C, D]
        pooled = nn.Dropout(m.dropout, deterministic=self.deterministic)(pooled)
        logits = _head(m, self.outputs)(pooled).astype(jnp.float32)  # [B·C, K]
        return logits.reshape(inputs.shape[0], -1) if C > 1 else logits  # [B, C] or [B, K]


class GPTTaskModel(nn.Module):
    """GPT backbone + a linear head on the extract token's final state. Returns (task logits
    float32 [B, K] or [B, C], LM logits [B, T, V] in the row layout of the inputs)."""

    model: ModelConfig
    outputs: int
    choices: int = 0
    deterministic: bool = True
    implementation: str = "xla"

    @nn.compact
    def __call__(self, inputs, positions, segment_ids):
        m, C = self.model, self.choices
        B, T = inputs.shape
        ids, pos, seg = (split_choices(a, C) for a in (inputs, positions, segment_ids))
        lm_logits, h = GPT(m, self.deterministic, self.implementation, features=True,
                           name="backbone")(ids, pos, seg)  # [B·C, S, V], [B·C, S, D]
        last = last_real(seg)  # [B·C]
        h_extract = jnp.take_along_axis(h, last[:, None, None], axis=1)[:, 0]  # [B·C, D]
        h_extract = nn.Dropout(m.dropout, deterministic=self.deterministic)(h_extract)
        logits = _head(m, self.outputs)(h_extract).astype(jnp.float32)  # [B·C, K]
        if C > 1:
            S = T // C
            logits = logits.reshape(B, C)  # [B, C]
            lm_logits = lm_logits.reshape(B, C * S, -1)  # [B, C·S, V]
            if C * S < T:  # the dropped remainder columns: zero logits, weight 0 in the data
                lm_logits = jnp.pad(lm_logits, ((0, 0), (0, T - C * S), (0, 0)))
        return logits, lm_logits
