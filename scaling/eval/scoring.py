"""Batched log-likelihood scoring of (context, continuation) requests, the engine under every
task format, the in-training evaluation and the lm-eval adapter (GPT-3 §2.4).

A context is encoded once into the key/value cache; every continuation that shares it (the
choices of a multiple-choice question) reads that cache, so a four-choice question costs one
prompt pass, not four. Requests are sorted by length and packed into a few fixed shapes
(lengths rounded up to powers of two), and each shape compiles once per process. Parameters
stay sharded as in training; rows of a batch split over data × fsdp.

Letter legend: G contexts in a batch, C continuations per context, R = G·C rows,
P context slots, L continuation slots, V vocab.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from scaling import sharding
from scaling.errors import UserError
from scaling.models.decoding import decoder, init_cache, prompt_layout


@dataclass(frozen=True)
class Request:
    """Score log p(continuation | context); both are token ids, context non-empty (BOS)."""

    context: tuple[int, ...]
    continuation: tuple[int, ...]


def bucket(n: int, lo: int = 8) -> int:
    """The next power of two >= n (at least `lo`): few shapes, few compilations."""
    return max(lo, 1 << max(n - 1, 0).bit_length())


def _repeat_rows(cache: dict, C: int) -> dict:
    """Every context's cache rows repeated for its C continuations (batch axis 1 under the
    scanned layer axis, else 0; the scalar index stays)."""
    def rep(path, x):
        if x.ndim == 0:
            return x
        axis = 1 if any(getattr(k, "key", None) == "layers" for k in path) else 0
        return jnp.repeat(x, C, axis=axis)

    return jax.tree_util.tree_map_with_path(rep, cache)


def score_batch(model, params, ctx, ctx_len, conts, cont_len):
    """Σ log p and all-greedy of each continuation. ctx [G, P] left-padded with ctx_len [G];
    conts [G, C, L] right-padded with cont_len [G, C]. Returns ([G, C] float, [G, C] bool)."""
    G, P = ctx.shape
    C, L = conts.shape[1:]
    dec = decoder(model)
    positions, segments, _ = prompt_layout(ctx, ctx_len)
    logits, state = dec.apply({"params": params, "cache": init_cache(model, G)}, ctx,
                              positions, segments, mutable=["cache"])  # [G, P, V]
    first = jnp.repeat(jax.nn.log_softmax(logits[:, -1]), C, axis=0)[:, None]  # [R, 1, V]
    rows = conts.reshape(G * C, L)  # [R, L]
    pos = jnp.repeat(ctx_len, C)[:, None] + jnp.arange(L)[None]  # [R, L]
    pos = jnp.minimum(pos, model.max_len - 1)  # padding past the end stays in the table
    logits, _ = dec.apply({"params": params, "cache": _repeat_rows(state["cache"], C)}, rows,
                          pos, mutable=["cache"])  # [R, L, V]
    logp = jnp.concatenate([first, jax.nn.log_softmax(logits[:, :-1])], axis=1)  # [R, L, V]
    tok = jnp.take_along_axis(logp, rows[..., None], axis=-1)[..., 0]  # [R, L]
    scored = jnp.arange(L)[None] < cont_len.reshape(-1)[:, None]  # [R, L]
    greedy = (jnp.argmax(logp, axis=-1) == rows) | ~scored  # [R, L]
    return (jnp.sum(jnp.where(scored, tok, 0.0), -1).reshape(G, C),
            jnp.all(greedy, -1).reshape(G, C))


class Scorer:
    """Scores requests for one model on one mesh; one compilation per batch shape."""

    def __init__(self, model, mesh, param_shardings, contexts: int = 8, max_choices: int = 8,
                 min_len: int = 8, progress: bool = False):
        """`contexts` per batch; lengths round up to powers of two >= `min_len` (a larger
        one: fewer shapes, more padding); `progress`: a progress bar by default."""
        self.model, self.mesh, self.param_shardings = model, mesh, param_shardings
        self.min_len, self.progress = min_len, progress
        shards = sharding.batch_ways(mesh)  # rows split over replica × data × fsdp
        self.G = -(-contexts // shards) * shards  # contexts per batch, a multiple of shards
        self.max_choices = max_choices

    @functools.lru_cache(maxsize=32)  # noqa: B019  (one Scorer per command or run)
    def _compiled(self, C: int, P: int, L: int):
        model, rows = self.model, sharding.batch_sharding(self.mesh, 2)

        def run(params, ctx, ctx_len, conts, cont_len):
            with sharding.axis_rules(), jax.sharding.use_abstract_mesh(self.mesh.abstract_mesh):
                return score_batch(model, params, ctx, ctx_len, conts, cont_len)

        return jax.jit(run, in_shardings=(self.param_shardings, rows,
                                          sharding.batch_sharding(self.mesh, 1),
                                          sharding.batch_sharding(self.mesh, 3), rows),
                       out_shardings=(rows, rows))

    def _units(self, requests: list[Request]) -> list[tuple[tuple, list[int]]]:
        """(context, request indices) with at most max_choices continuations each; contexts
        cut from the left so that context + continuation fit max_len."""
        T, groups = self.model.max_len, {}
        for i, r in enumerate(requests):
            if not r.continuation or len(r.continuation) > T - 1:
                raise UserError(f"a continuation of {len(r.continuation)} tokens cannot be "
                                f"scored by a model of {T} positions (1..{T - 1} tokens)")
            ctx = r.context[-(T - len(r.continuation)):] or (0,)
            groups.setdefault(ctx, []).append(i)
        units = [(ctx, idx[j:j + self.max_choices]) for ctx, idx in groups.items()
                 for j in range(0, len(idx), self.max_choices)]
        return sorted(units, key=lambda u: (len(u[0]), len(u[1])))

    def _batches(self, units, requests):
        """Consecutive units while the longest context + longest continuation fit."""
        T, batch = self.model.max_len, []
        for u in units:
            grown = batch + [u]
            need = max(len(c) for c, _ in grown) + max(
                len(requests[i].continuation) for _, idx in grown for i in idx)
            if len(grown) > self.G or need > T:
                yield batch
                grown = [u]
            batch = grown
        if batch:
            yield batch

    def score(self, params, requests: list[Request], progress: bool | None = None):
        """(Σ log p [N], all tokens greedy [N]) of every request, in order."""
        progress = self.progress if progress is None else progress
        logp, greedy = np.zeros(len(requests)), np.zeros(len(requests), bool)
        units = self._units(requests)
        bar = tqdm(total=len(requests), disable=None if progress else True,  # None: TTY only
                   desc="scoring", leave=False)
        T = self.model.max_len
        for batch in self._batches(units, requests):
            n_ctx = max(len(c) for c, _ in batch)
            n_cont = max(len(requests[i].continuation) for _, idx in batch for i in idx)
            C = bucket(max(len(idx) for _, idx in batch), 1)
            P, L = bucket(n_ctx, self.min_len), bucket(n_cont, self.min_len)
            if P + L > T:
                L = n_cont if n_ctx + L > T else L
                P = T - L
            ctx, ctx_len = np.zeros((self.G, P), np.int32), np.ones(self.G, np.int32)
            conts, cont_len = np.zeros((self.G, C, L), np.int32), np.zeros((self.G, C), np.int32)
            for g, (c, idx) in enumerate(batch):
                ctx[g, P - len(c):], ctx_len[g] = c, len(c)
                for j, i in enumerate(idx):
                    cont = requests[i].continuation
                    conts[g, j, :len(cont)], cont_len[g, j] = cont, len(cont)
            lp, gr = self._compiled(C, P, L)(params, ctx, ctx_len, conts, cont_len)
            lp, gr = np.asarray(lp), np.asarray(gr)
            for g, (_, idx) in enumerate(batch):
                for j, i in enumerate(idx):
                    logp[i], greedy[i] = lp[g, j], gr[g, j]
            bar.update(sum(len(idx) for _, idx in batch))
        bar.close()
        return logp, greedy


def local_scorer(model, params, **kwargs) -> Scorer:
    """A Scorer on this host's first device, parameters replicated (tests, small models)."""
    from scaling.config import MeshConfig

    mesh = sharding.make_mesh(MeshConfig(1, 1, 1), jax.devices()[:1])
    return Scorer(model, mesh, jax.tree.map(lambda _: sharding.replicated(mesh), params),
                  **kwargs)
