"""The speed changes keep the model's function: fused QKV, unrolled scan, the accuracy metric,
the platform rule for scan_unroll, the compile cache setting and the PyTorch reference shape."""

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from scaling.config import Config, MeshConfig, ModelConfig, TrainConfig
from scaling.models.attention import Attention, causal_mask
from scaling.models.losses import token_accuracy
from scaling.platform import CPU_UNROLL_MAX_LAYERS, resolve

TINY = ModelConfig(vocab_size=61, n_layers=2, d_model=16, n_heads=2, d_ff=32, max_len=8,
                   dropout=0.0, attn_dropout=0.0, vocab_multiple=8)


def test_fused_qkv_equals_three_projections():
    """Self-attention (one matmul on the concatenated kernels) against the same parameters
    applied one projection at a time in NumPy."""
    B, T, D, N = 2, 5, 16, 4
    x = np.random.default_rng(0).normal(size=(B, T, D)).astype(np.float32)
    attn = Attention(N)
    mask = causal_mask(T)
    params = nn.unbox(jax.jit(lambda r: attn.init(r, x, x, mask))(jax.random.key(0)))["params"]
    params = jax.tree.map(lambda p: p + 0.1 * np.random.default_rng(1).normal(size=p.shape),
                          params)  # non-zero biases
    got = np.asarray(jax.jit(lambda p: attn.apply({"params": p}, x, x, mask))(params))
    p = jax.tree.map(np.asarray, params)
    q, k, v = (np.einsum("btd,dnh->btnh", x, p[n]["kernel"]) + p[n]["bias"]
               for n in ("query", "key", "value"))
    logits = np.einsum("btnh,bsnh->bnts", q, k) / np.sqrt(D // N)
    logits = np.where(np.tril(np.ones((T, T), bool)), logits, -np.inf)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = np.einsum("bnts,bsnh->btnh", probs, v)
    want = np.einsum("btnh,nhd->btd", out, p["out"]["kernel"]) + p["out"]["bias"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert set(params) == {"query", "key", "value", "out"}  # the tree is unchanged


@pytest.mark.slow
def test_unrolled_scan_equals_scan():
    """scan_unroll=L (the CPU default) and scan_unroll=1 (a loop) agree on logits and
    gradients with one parameter tree."""
    from scaling.models.gpt import GPT

    ids = jnp.asarray(np.random.default_rng(0).integers(0, 61, (2, 8)), jnp.int32)
    looped = GPT(dataclasses.replace(TINY, scan_unroll=1))
    unrolled = GPT(dataclasses.replace(TINY, scan_unroll=2))
    params = nn.unbox(jax.jit(looped.init)(jax.random.key(0), ids))["params"]

    def loss_and_logits(model):
        def f(p):
            logits = model.apply({"params": p}, ids)
            return jnp.mean(jax.nn.log_softmax(logits)[..., 0]), logits
        return jax.jit(jax.value_and_grad(f, has_aux=True))

    (_, l1), g1 = loss_and_logits(looped)(params)
    (_, l2), g2 = loss_and_logits(unrolled)(params)
    np.testing.assert_allclose(l1, l2, rtol=1e-5, atol=1e-5)
    assert jax.tree.structure(g1) == jax.tree.structure(g2)  # one parameter tree
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_token_accuracy_matches_numpy_argmax():
    r = np.random.default_rng(0)
    logits = r.normal(size=(3, 7, 11)).astype(np.float32)
    targets = r.integers(0, 11, (3, 7))
    targets[0, :4] = logits[0, :4].argmax(-1)  # some hits for sure
    weights = (r.random((3, 7)) > 0.3).astype(np.float32)
    hits, count = token_accuracy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights))
    want = ((logits.argmax(-1) == targets) * weights).sum()
    assert float(hits) == pytest.approx(want) and float(count) == pytest.approx(weights.sum())


def test_scan_unroll_platform_rule():
    class Dev:
        def __init__(self, platform):
            self.platform = platform

    deep = dataclasses.replace(TINY, n_layers=CPU_UNROLL_MAX_LAYERS + 1)
    assert resolve(Config(model=TINY), [Dev("cpu")]).model.scan_unroll == 2
    assert resolve(Config(model=deep), [Dev("cpu")]).model.scan_unroll == 1
    assert resolve(Config(model=TINY), [Dev("tpu")]).model.scan_unroll == 1
    fixed = dataclasses.replace(TINY, scan_unroll=1)
    assert resolve(Config(model=fixed), [Dev("cpu")]).model.scan_unroll == 1


@pytest.mark.slow
def test_fsdp_gather_once_a_step_runs_fewer_all_gathers():
    """On a (2, 2, 2) mesh the train step with `train.fsdp_gather=step` runs fewer
    all-gathers than the per-layer default (counted in the optimized HLO: the weights are
    gathered once, not per layer and again in the backward)."""
    import re

    from scaling import sharding
    from scaling.bench.train import synthetic_batch
    from scaling.config import MeshConfig
    from scaling.train.optimizer import make_optimizer
    from scaling.train.state import init_state
    from scaling.train.step import compile_steps

    assert Config().train.fsdp_gather == "layer"
    model = dataclasses.replace(TINY, d_model=32, n_heads=4, d_ff=64, max_len=16)
    gathers = {}
    for how in ("layer", "step"):
        config = Config(model=model, mesh=MeshConfig(2, 2, 2),
                        train=TrainConfig(steps=4, global_batch=8, fsdp_gather=how))
        mesh = sharding.make_mesh(config.mesh, jax.devices()[:8])
        tx = make_optimizer(config.optim, config.train.steps)
        state, shardings = init_state(config, tx, mesh, jax.random.key(0))
        train_fn, _ = compile_steps(config, tx, mesh, shardings)
        batch = jax.device_put(synthetic_batch(config, np.random.default_rng(0)),
                               sharding.batch_sharding(mesh, 1))
        hlo = train_fn.lower(state, batch, jax.random.key(1)).compile().as_text()
        gathers[how] = len(re.findall(r"= \S+ all-gather(?:-start)?\(", hlo))
    assert 0 < gathers["step"] < gathers["layer"], gathers


def test_compile_cache_under_data_cache_dir(tmp_path, monkeypatch):
    from scaling.compile_cache import enable_compile_cache

    before = jax.config.jax_compilation_cache_dir
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    config = Config()
    config = dataclasses.replace(config, data=dataclasses.replace(config.data,
                                                                  cache_dir=str(tmp_path)))
    try:
        assert Config().train.compile_cache  # on by default
        assert enable_compile_cache(config) == str(tmp_path / "xla")
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "xla")
        off = dataclasses.replace(config, train=TrainConfig(compile_cache=False))
        assert enable_compile_cache(off) is None
    finally:
        jax.config.update("jax_compilation_cache_dir", before)


def test_torch_reference_has_our_parameter_count():
    """The PyTorch reference of `bench torch` is the same model: same parameter count (a hand
    count: tied table, positions, 4 kernels + 4 biases + 2 norms per layer, final norm)."""
    pytest.importorskip("torch")
    from scaling.bench.torch_reference import reference_gpt
    from scaling.params import count_params

    config = Config(model=TINY)
    m = TINY
    hand = (m.padded_vocab * m.d_model + m.max_len * m.d_model
            + m.n_layers * (4 * m.d_model**2 + 4 * m.d_model + 2 * m.d_model * m.d_ff + m.d_ff
                            + m.d_model + 4 * m.d_model) + 2 * m.d_model)
    torch_count = sum(p.numel() for p in reference_gpt(config).parameters())
    assert torch_count == hand == count_params(config)["total"]


@pytest.mark.slow
@pytest.mark.parametrize("process", ["separate", "same"])
def test_bench_torch_runs_the_reference_in_either_process(process, capsys):
    """`bench torch` interleaves both steps and prints a ratio; by default the reference runs
    in a child process (glibc's default allocator there)."""
    pytest.importorskip("torch")
    from scaling.bench.torch_reference import bench_torch

    config = Config(model=TINY, mesh=MeshConfig(data=-1, fsdp=1, tensor=1),
                    train=TrainConfig(global_batch=8))
    assert bench_torch(config, steps=1, rounds=2, warmup=0, torch_process=process) == 0
    out = capsys.readouterr().out
    assert f"{process} process" in out
    assert len(re.findall(r"round \d: ours [\d,]+ tokens/s, torch [\d,]+ tokens/s", out)) == 2
    assert re.search(r"median ratio ours/torch over 2 rounds of 1 steps: [\d.]+", out)
