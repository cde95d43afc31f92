"""Greedy and beam search over any step function, jit-compiled with fixed shapes.

Letter legend: B sources, K beam size, R = B·K rows, L maximum output length, V vocab.

A step function maps (tokens [R], state) -> (log-probabilities [R, V], state): the decoder
with its cache, or a toy table in tests. `reorder(state, rows [R])` gathers the state's rows
(the beams' caches follow their parents). Every source b stops at `limits[b]` tokens.

Beam search (Wu et al. 2016, GNMT §7, as in Vaswani et al. 2017 §6.1): hypotheses are
scored by log P(Y) / lp(Y), lp(Y) = ((5 + |Y|) / 6)^α, where |Y| counts the generated tokens
including the end token. Each step expands the K live hypotheses into their 2K best
continuations; those that end (end token, or the source's length limit) join the K best
finished hypotheses, the K best others stay live. A source is done when no live hypothesis
can beat its K-th finished one: log P only falls as tokens are added and lp only grows, so
a live hypothesis can reach at most log P / lp(limit).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG = -1e30  # "minus infinity" that stays finite under arithmetic


def length_penalty(length, alpha: float):
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^α."""
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def greedy(step_fn, state, *, batch: int, max_len: int, limits, bos: int, eos: int):
    """The most likely token at every step until the end token or `limits[b]`: tokens
    [B, L], 0 after the end token."""
    tokens0 = jnp.full((batch,), bos, jnp.int32)
    out0 = jnp.zeros((batch, max_len), jnp.int32)

    def cond(carry):
        t, _, _, done, _ = carry
        return (t < max_len) & ~jnp.all(done)

    def body(carry):
        t, tokens, out, done, state = carry
        logp, state = step_fn(tokens, state)  # [B, V]
        nxt = jnp.argmax(logp, axis=-1).astype(jnp.int32)  # [B]
        nxt = jnp.where(done, 0, nxt)
        out = out.at[:, t].set(nxt)
        done = done | (nxt == eos) | (t + 1 >= limits)
        return t + 1, nxt, out, done, state

    carry = (jnp.int32(0), tokens0, out0, jnp.zeros((batch,), bool), state)
    _, _, out, _, _ = jax.lax.while_loop(cond, body, carry)
    return out  # [B, L]


def beam_search(step_fn, reorder, state, *, batch: int, beam: int, max_len: int, limits,
                bos: int, eos: int, alpha: float = 0.6):
    """The best finished hypothesis of every source: tokens [B, L] (0 after the end token)
    and its score log P / lp [B]. `state` holds R = B·K rows, row b·K + k = beam k of b."""
    B, K = batch, beam
    NB = jnp.arange(B)[:, None]  # [B, 1]
    live_seqs = jnp.zeros((B, K, max_len), jnp.int32)
    live_logp = jnp.tile(jnp.asarray([0.0] + [NEG] * (K - 1), jnp.float32), (B, 1))  # [B, K]
    fin_seqs = jnp.zeros((B, K, max_len), jnp.int32)
    fin_scores = jnp.full((B, K), NEG, jnp.float32)
    limits = jnp.asarray(limits, jnp.int32)  # [B]

    def cond(carry):
        t, *_, done, _ = carry
        return (t < max_len) & ~jnp.all(done)

    def body(carry):
        t, tokens, live_seqs, live_logp, fin_seqs, fin_scores, done, state = carry
        logp, state = step_fn(tokens, state)  # [R, V]
        V = logp.shape[-1]
        cand = live_logp[:, :, None] + logp.reshape(B, K, V)  # [B, K, V]
        scores, idx = jax.lax.top_k(cand.reshape(B, K * V), 2 * K)  # [B, 2K]
        parent, token = idx // V, (idx % V).astype(jnp.int32)  # [B, 2K]
        length = t + 1
        ends = (token == eos) | (length >= limits[:, None])  # [B, 2K]
        seqs = live_seqs[NB, parent].at[:, :, t].set(token)  # [B, 2K, L]
        # the K best continuations that go on
        live_scores = jnp.where(ends | (scores <= NEG / 2), NEG, scores)
        new_logp, pick = jax.lax.top_k(live_scores, K)  # [B, K]
        new_live = seqs[NB, pick]  # [B, K, L]
        new_parent, new_token = parent[NB, pick], token[NB, pick]  # [B, K]
        # the K best finished, old and new together
        ended = jnp.where(ends & (scores > NEG / 2), scores / length_penalty(length, alpha),
                          NEG)  # [B, 2K]
        all_scores = jnp.concatenate([fin_scores, ended], axis=1)  # [B, 3K]
        best, which = jax.lax.top_k(all_scores, K)  # [B, K]
        best_seqs = jnp.concatenate([fin_seqs, seqs], axis=1)[NB, which]  # [B, K, L]
        keep = done[:, None]  # a finished source keeps its results
        fin_scores = jnp.where(keep, fin_scores, best)
        fin_seqs = jnp.where(keep[..., None], fin_seqs, best_seqs)
        live_seqs = jnp.where(keep[..., None], live_seqs, new_live)
        live_logp = jnp.where(keep, live_logp, new_logp)
        rows = (jnp.arange(B)[:, None] * K + new_parent).reshape(B * K)  # [R]
        state = reorder(state, rows)
        reachable = live_logp[:, 0] / length_penalty(limits, alpha)  # [B] best live can get
        done = done | (length >= limits) | (fin_scores[:, K - 1] >= reachable)
        return (t + 1, new_token.reshape(B * K), live_seqs, live_logp, fin_seqs, fin_scores,
                done, state)

    carry = (jnp.int32(0), jnp.full((B * K,), bos, jnp.int32), live_seqs, live_logp, fin_seqs,
             fin_scores, jnp.zeros((B,), bool), state)
    carry = jax.lax.while_loop(cond, body, carry)
    best_seqs, best_scores = carry[4][:, 0], carry[5][:, 0]  # [B, L], [B]
    after_end = jnp.cumsum(best_seqs == eos, axis=1) - (best_seqs == eos) > 0
    return jnp.where(after_end, 0, best_seqs), best_scores
