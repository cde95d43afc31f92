"""Autoregressive generation with the key/value cache, and `scaling generate`.

Letter legend: B batch, P prompt length, V vocab, K new tokens.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from scaling.config import Config
from scaling.errors import UserError
from scaling.eval.encoding import encode_prompt, prefix_token
from scaling.families import family_of
from scaling.models.decoding import generate, init_cache, sample  # noqa: F401


def _can_generate(config: Config, workdir: str) -> None:
    """What generation refuses (load_run's `check`): a fine-tuned run, a family without a
    decoder."""
    from scaling.checkpoint.load import refuse_finetuned

    refuse_finetuned(config, workdir, "generation")
    family = family_of(config.model)
    if family.decoder is None:
        raise UserError(f"{workdir} is a {family.name}-family run, which has no autoregressive "
                        f"decoder; generation and scoring need a family that has one (gpt)")


def generate_text(workdir: str, prompt: str, new_tokens: int, temperature: float,
                  top_k: int, seed: int, top_p: float = 1.0, stop=()) -> str:
    """The run's continuation of `prompt`, cut at the first end-of-document token and the
    first stop sequence."""
    from scaling.checkpoint.load import load_run

    if new_tokens < 1 or temperature < 0 or top_k < 0:
        raise UserError("--max-new-tokens must be >= 1, --temperature and --top-k >= 0")
    # one prompt: one device; the run's copy of its tokenizer when it keeps one
    run = load_run(workdir, check=_can_generate, one_device=True, tokenizer=True)
    config, params, tokenizer = run.config, run.params, run.tokenizer
    ids = list(encode_prompt(tokenizer, prompt))
    if len(ids) + new_tokens > config.model.max_len:
        raise UserError(f"prompt ({len(ids)} tokens) + {new_tokens} new tokens exceed the "
                        f"model's {config.model.max_len} positions; shorten one of them")
    decoder = family_of(config.model).decoder
    out = decoder(config.model, params, jnp.asarray([ids], jnp.int32), jax.random.key(seed),
                  new_tokens=new_tokens, temperature=float(temperature), top_k=int(top_k),
                  top_p=float(top_p))
    new = [int(t) for t in np.asarray(out)[0]]
    if tokenizer.eos_id in new:
        new = new[:new.index(tokenizer.eos_id)]
    return cut_at_stop(tokenizer.decode(new), stop)


def generate_file(workdir: str, path: str, new_tokens: int, temperature: float, top_k: int,
                  top_p: float, stop, seed: int, batch: int) -> int:
    """`scaling generate --prompts FILE`: one continuation per prompt line, printed as JSON
    lines {"prompt", "text"} in order, then the speed in tokens/s on stderr."""
    import json
    import sys

    from scaling.checkpoint.load import load_run

    if batch < 1:
        raise UserError(f"--batch {batch}: expected >= 1")
    try:
        with open(path, encoding="utf-8") as f:
            prompts = [ln.rstrip("\n") for ln in f if ln.strip()]
    except IsADirectoryError:
        raise UserError(f"--prompts {path} is a directory; give a text file") from None
    except UnicodeDecodeError:
        raise UserError(f"--prompts {path} is not UTF-8 text") from None
    if not prompts:
        raise UserError(f"--prompts {path} has no prompts (one a line)")
    run = load_run(workdir, check=_can_generate, tokenizer=True)  # many prompts: its mesh
    config, params, tokenizer, mesh = run.config, run.params, run.tokenizer, run.mesh
    ids = [list(encode_prompt(tokenizer, p)) for p in prompts]
    texts, stats = generate_batch(config.model, params, tokenizer, ids, new_tokens=new_tokens,
                                  temperature=temperature, top_k=top_k, top_p=top_p,
                                  stop=tuple(stop), seed=seed, batch=batch, mesh=mesh)
    for p, t in zip(prompts, texts, strict=True):
        print(json.dumps({"prompt": p, "text": t}), flush=True)
    cut = f"; {stats['truncated']} prompts cut from the left" if stats["truncated"] else ""
    print(f"{stats['tokens_per_sec']:.0f} tokens/s (compilation included){cut}",
          file=sys.stderr)
    return 0


@contextlib.contextmanager
def _traced_on(mesh):
    """The model's sharding rules and `mesh` while tracing (nothing without a mesh)."""
    from scaling import sharding

    if mesh is None:
        yield
        return
    with sharding.axis_rules(), jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
        yield


def cut_at_stop(text: str, stop) -> str:
    """`text` up to (not including) the earliest occurrence of any stop sequence."""
    ends = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return text[:min(ends)] if ends else text


def generate_batch(model, params, tokenizer, prompts: list[list[int]], *, new_tokens: int,
                   temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, stop=(),
                   seed: int = 0, batch: int = 8, mesh=None) -> tuple[list[str], dict]:
    """Continuations of token-id prompts of any lengths, `batch` at a time, left-padded
    (decoding.generate keeps each row's own positions), each cut at end-of-document and at
    the first stop sequence. Returns (texts, {"tokens_per_sec", "truncated"}): prompts longer
    than max_len - new_tokens lose their oldest tokens, and are counted.

    With a `mesh` (the parameters laid out on it, as in training) the rows are split over
    its batch axes and the model's activations and cache follow its sharding rules; `batch`
    rounds up to a multiple of the batch ways. Row b's tokens are those of the row alone on
    one device (sampling draws the same numbers whatever the layout)."""
    import time

    from scaling import sharding
    from scaling.eval.scoring import bucket

    rows = (None, None)
    if mesh is not None:
        batch = -(-batch // sharding.batch_ways(mesh)) * sharding.batch_ways(mesh)
        rows = (sharding.batch_sharding(mesh, 2), sharding.batch_sharding(mesh, 1))

    T = model.max_len
    if new_tokens < 1 or new_tokens >= T:
        raise UserError(f"{new_tokens} new tokens: expected 1..{T - 1} for a model of {T} "
                        f"positions")
    room = T - new_tokens
    truncated = sum(len(p) > room for p in prompts)
    prompts = [list(p[-room:]) or [prefix_token(tokenizer)] for p in prompts]
    texts, t0, made = [], time.perf_counter(), 0
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        P = min(bucket(max(len(p) for p in chunk)), room)
        ids, lengths = np.zeros((batch, P), np.int32), np.ones(batch, np.int32)
        for j, p in enumerate(chunk):
            ids[j, P - len(p):], lengths[j] = p, len(p)
        ids, lengths = jax.device_put(ids, rows[0]), jax.device_put(lengths, rows[1])
        with _traced_on(mesh):
            out = np.asarray(generate(model, params, ids, jax.random.key(seed + i),
                                      new_tokens=new_tokens, temperature=float(temperature),
                                      top_k=int(top_k), top_p=float(top_p), lengths=lengths))
        made += len(chunk) * new_tokens
        for row in out[:len(chunk)]:
            row = [int(t) for t in row]
            if tokenizer.eos_id in row:
                row = row[:row.index(tokenizer.eos_id)]
            texts.append(cut_at_stop(tokenizer.decode(row), stop))
    return texts, {"tokens_per_sec": made / (time.perf_counter() - t0), "truncated": truncated}
