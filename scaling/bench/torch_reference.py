"""`scaling bench torch`: our train step against a PyTorch reference GPT of the same shape.

The reference is a plain PyTorch GPT written here (GPT-2 layout: tied embeddings, learned
positions, a fused QKV projection and `F.scaled_dot_product_attention(is_causal=True)`,
pre- or post-LN as configured), trained with the same loss, global-norm clipping and
`torch.optim.AdamW`. Both run on the same synthetic batch, interleaved A B A B (never at
the same time), so both see the same machine load; the ratio per round and its median are
printed. By default the reference runs in a child process of its own, so each framework has
the host allocator it ships with: ours tunes glibc's malloc on CPU (scaling/host_memory.py),
which a plain PyTorch script does not; `--torch-process same` runs both in this process,
under our allocator settings. torch comes from the optional `[bench]` extra and is imported
only here.

Letter legend: B batch, T length, D model width, N heads, H head width, V vocab.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time

import numpy as np

from scaling.config import Config
from scaling.errors import UserError


def _torch():
    try:
        import torch
    except ImportError:
        raise UserError("`scaling bench torch` needs PyTorch: pip install -e '.[bench]' "
                        "(or pip install torch)") from None
    return torch


def reference_gpt(config: Config):
    """A PyTorch GPT (torch.nn.Module) of `config.model`'s shape: logits [B, T, V]."""
    torch = _torch()
    nn, F = torch.nn, torch.nn.functional
    m = config.model
    from scaling.families import objective_of

    if objective_of(config).name != "causal_lm" or m.n_decoder_layers:
        raise UserError(f"bench torch: the reference is a causal decoder (GPT); "
                        f"{config.name!r} trains {objective_of(config).name!r}; use a gpt preset")
    approx = {"gelu": "none", "gelu_tanh": "tanh"}

    def act(h):
        if m.activation == "relu":
            return F.relu(h)
        return F.gelu(h, approximate=approx[m.activation])

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(m.d_model, m.ln_eps), nn.LayerNorm(m.d_model,
                                                                                 m.ln_eps)
            self.qkv = nn.Linear(m.d_model, 3 * m.d_model)
            self.proj = nn.Linear(m.d_model, m.d_model)
            self.fc, self.out = nn.Linear(m.d_model, m.d_ff), nn.Linear(m.d_ff, m.d_model)

        def attn(self, x):  # [B, T, D]
            B, T, D = x.shape
            q, k, v = self.qkv(x).view(B, T, 3, m.n_heads, D // m.n_heads).unbind(2)
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, N, T, H]
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                               dropout_p=m.attn_dropout if self.training else 0)
            return self.proj(y.transpose(1, 2).reshape(B, T, D))

        def mlp(self, x):
            return self.out(act(self.fc(x)))

        def forward(self, x):
            drop = m.dropout if self.training else 0.0
            if m.norm == "pre":
                x = x + F.dropout(self.attn(self.ln1(x)), drop)
                return x + F.dropout(self.mlp(self.ln2(x)), drop)
            x = self.ln1(x + F.dropout(self.attn(x), drop))
            return self.ln2(x + F.dropout(self.mlp(x), drop))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(m.padded_vocab, m.d_model)
            self.wpe = nn.Embedding(m.max_len, m.d_model)
            self.blocks = nn.ModuleList(Block() for _ in range(m.n_layers))
            self.ln_f = nn.LayerNorm(m.d_model, m.ln_eps) if m.norm == "pre" else nn.Identity()
            for p in self.parameters():
                if p.dim() > 1:
                    nn.init.normal_(p, std=m.init_std)

        def forward(self, ids):  # [B, T]
            pos = torch.arange(ids.shape[1], device=ids.device)
            x = F.dropout(self.wte(ids) + self.wpe(pos), m.dropout, self.training)
            for block in self.blocks:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.T  # [B, T, V]
            return logits[..., :m.vocab_size]

    return GPT()


def torch_runner(config: Config, batch: dict):
    """A function steps -> seconds running the reference's train step `steps` times."""
    torch = _torch()
    torch.manual_seed(0)
    model = reference_gpt(config).train()
    o = config.optim
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(o.b1, o.b2), eps=o.eps,
                            weight_decay=o.weight_decay)
    ids = torch.from_numpy(np.asarray(batch["inputs"], np.int64))
    targets = torch.from_numpy(np.asarray(batch["targets"], np.int64))

    def step():
        logits = model(ids)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if o.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_norm)
        opt.step()
        return loss

    def run(steps: int) -> float:
        t = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - t

    run(2)  # warm-up: allocator and autograd caches
    return run


def _serve(conn, config: Config, batch: dict) -> None:
    """Child process: build the reference, then answer each `steps` sent with the seconds
    those steps took (None ends it)."""
    torch = _torch()
    run = torch_runner(config, batch)
    conn.send((torch.__version__, torch.get_num_threads()))
    while (steps := conn.recv()) is not None:
        conn.send(run(steps))


class _ChildRunner:
    """`torch_runner` in a spawned child process (glibc's default allocator there)."""

    def __init__(self, config: Config, batch: dict):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, config, batch), daemon=True)
        self.proc.start()
        self.version, self.threads = self.conn.recv()

    def __call__(self, steps: int) -> float:
        self.conn.send(steps)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(timeout=30)


def bench_torch(config: Config, steps: int = 5, rounds: int = 3, warmup: int = 2,
                torch_process: str = "separate") -> int:
    """Print tokens/s of our train step and of the PyTorch reference, interleaved A B A B,
    the ratio (ours / torch) per round and the median ratio. `torch_process`: "separate"
    (a child process with glibc's default allocator, as a plain PyTorch script runs) or
    "same" (this process, under our allocator settings)."""
    from scaling.bench.train import train_runner
    from scaling.validate import validate

    if steps < 1 or rounds < 1 or warmup < 0:
        raise UserError(f"--steps {steps} --rounds {rounds} --warmup {warmup}: need at least "
                        f"one step and one round, and a non-negative warmup")
    if torch_process not in ("separate", "same"):
        raise UserError(f"--torch-process {torch_process}: expected separate or same")
    torch = _torch()
    ours = train_runner(validate(config), warmup)
    batch = ours["batch"]
    if torch_process == "same":
        theirs = torch_runner(config, batch)
        version, threads = torch.__version__, torch.get_num_threads()
    else:
        theirs = _ChildRunner(config, batch)
        version, threads = theirs.version, theirs.threads
    tokens = config.train.global_batch * config.seq_len * steps
    m = config.model
    print(f"shape: {m.n_layers} layers, {m.n_heads} heads, d {m.d_model}, d_ff {m.d_ff}, "
          f"T {config.seq_len}, vocab {m.vocab_size}, batch {config.train.global_batch}, "
          f"dtype {ours['config'].model.dtype}, scan_layers {m.scan_layers}, "
          f"{ours['devices']} device(s)")
    print(f"torch {version}: {threads} threads, {torch_process} process "
          f"({'glibc default allocator' if torch_process == 'separate' else 'our allocator'}"
          f"); XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; SCALING_MALLOC="
          f"{os.environ.get('SCALING_MALLOC', '')!r}; our compile {ours['compile_s']:.1f} s")
    ratios = []
    for r in range(rounds):
        time.sleep(0.5)  # let the other side's spinning worker threads go idle first
        a = tokens / ours["run"](steps)
        time.sleep(0.5)
        b = tokens / theirs(steps)
        ratios.append(a / b)
        print(f"round {r + 1}: ours {a:,.0f} tokens/s, torch {b:,.0f} tokens/s, "
              f"ratio {a / b:.3f}", flush=True)
    print(f"median ratio ours/torch over {rounds} rounds of {steps} steps: "
          f"{statistics.median(ratios):.3f}")
    if torch_process == "separate":
        theirs.close()
    return 0
