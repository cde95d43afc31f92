"""Few-shot evaluation: the batched scorer against the plain one, each multiple-choice
normalization against a hand computation, prompts, synthetic tasks against GPT-3's
definitions, top-p, stop sequences, batched generation against one prompt at a time."""

import json
import random
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.eval import synthetic
from scaling.eval.answer_metrics import exact_match, normalize_answer, token_f1
from scaling.eval.fewshot import pack_choice, score
from scaling.eval.formats import evaluate_task
from scaling.eval.generate import cut_at_stop, generate_batch
from scaling.eval.prompts import MAX_SHOTS, build_prompt
from scaling.eval.scoring import Request, local_scorer
from scaling.eval.tasks import Example, Task, TaskSpec, jsonl_task, yaml_task
from scaling.models import gpt
from scaling.models.decoding import generate, nucleus

MODEL = ModelConfig(vocab_size=260, n_layers=2, d_model=32, n_heads=4, d_ff=64, max_len=32,
                    dropout=0.0, attn_dropout=0.0, dtype="float32")


class ByteTokenizer:
    """UTF-8 bytes as ids; 256 = begin, 257 = end of document."""

    bos_id, eos_id = 256, 257

    def encode(self, text):
        return list(text.encode("utf-8"))

    def decode(self, ids):
        return bytes(i for i in ids if i < 256).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def toy():
    init = jax.jit(lambda key: gpt.GPT(MODEL).init(key, jnp.zeros((1, 8), jnp.int32)))
    params = nn.unbox(init(jax.random.key(0))["params"])
    return params, local_scorer(MODEL, params, contexts=4, max_choices=4, min_len=16)


@jax.jit
def forward(params, seq):
    return gpt.GPT(MODEL).apply({"params": params}, seq)


def direct_logp(params, context, continuation):
    """Σ log p(continuation | context) from one full forward pass, in float64 NumPy (the
    row padded at its end to max_len: causal, so the padding changes nothing before it)."""
    seq = list(context) + list(continuation)
    padded = jnp.asarray([seq + [0] * (MODEL.max_len - len(seq))])
    logits = np.asarray(forward(params, padded), np.float64)[0]
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # [T, V]
    n = len(context)
    return sum(logp[n + i - 1, c] for i, c in enumerate(continuation))


def random_requests(seed=0, cut=True):
    rng, reqs = np.random.default_rng(seed), []
    for _ in range(6):
        ctx = tuple(int(x) for x in rng.integers(1, 256, rng.integers(1, 16)))
        for _ in range(rng.integers(1, 5)):  # several continuations share a context
            reqs.append(Request(ctx, tuple(int(x) for x in rng.integers(1, 256,
                                                                         rng.integers(1, 9)))))
    if cut:
        reqs.append(Request(tuple(range(1, 40)), (5, 6, 7)))  # context cut from the left
    return reqs


@pytest.mark.slow
def test_batched_shared_prompt_scorer_equals_one_row_at_a_time(toy):
    params, scorer = toy
    reqs = random_requests()
    got, _ = scorer.score(params, reqs)
    T = MODEL.max_len
    plain = score(MODEL, params, [pack_choice(list(r.context[-(T - len(r.continuation)):]),
                                              list(r.continuation), T) for r in reqs], batch=1)
    np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_scoring_on_8_devices_equals_one(toy):
    from scaling import sharding
    from scaling.config import MeshConfig
    from scaling.eval.scoring import Scorer

    params, scorer = toy
    mesh = sharding.make_mesh(MeshConfig(data=2, fsdp=2, tensor=2), jax.devices()[:8])
    boxed = jax.eval_shape(lambda: gpt.GPT(MODEL).init(jax.random.key(0),
                                                       jnp.zeros((1, 8), jnp.int32)))["params"]
    shardings = sharding.logical_shardings(boxed, mesh)
    sharded = jax.device_put(params, shardings)
    reqs = random_requests(1, cut=False)  # one batch: one compilation on 8 devices
    eight = Scorer(MODEL, mesh, shardings, contexts=8, max_choices=4, min_len=16)
    got, greedy = eight.score(sharded, reqs)
    one, greedy1 = scorer.score(params, reqs)
    np.testing.assert_allclose(got, one, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(greedy, greedy1)


def test_each_normalization_against_a_hand_computation(toy):
    params, scorer = toy
    tok = ByteTokenizer()
    spec = TaskSpec(target_delimiter=" ", unconditional_context="Answer:")
    ex = [Example("Q: sky? A:", ("blue", "a green one", "x"), 1),
          Example("Q: 2+2? A:", ("four", "22", "fish fish"), 0)]
    task = Task("toy", tuple(ex), tuple(ex), spec)
    r = evaluate_task(MODEL, params, tok, task, 0, scorer=scorer, samples=True)
    for e, s in zip(ex, r["samples"], strict=True):
        ctx, unc = [256, *tok.encode(e.context)], [256, *tok.encode("Answer:")]
        conts = [tok.encode(" " + c) for c in e.choices]
        lp = np.array([direct_logp(params, ctx, c) for c in conts])
        lp_u = np.array([direct_logp(params, unc, c) for c in conts])
        np.testing.assert_allclose(s["logp"], lp, rtol=1e-4)
        np.testing.assert_allclose(s["logp_uncond"], lp_u, rtol=1e-4)
        assert s["chars"] == [len(" " + c) for c in e.choices]  # bytes = characters here
        s["hand"] = {"acc": np.argmax(lp), "acc_per_token": np.argmax(lp / [len(c) for c in conts]),
                     "acc_norm": np.argmax(lp / [len(" " + c) for c in e.choices]),
                     "acc_uncond": np.argmax(lp - lp_u)}
    for name in ("acc", "acc_per_token", "acc_norm", "acc_uncond"):
        hand = np.mean([s["hand"][name] == e.answer
                        for s, e in zip(r["samples"], ex, strict=True)])
        assert r[name] == hand, name


def test_cloze_and_rolling_against_direct_log_likelihood(toy):
    params, scorer = toy
    tok = ByteTokenizer()
    cloze = Task("c", (Example("the cat sat on the", ("mat",)),) * 2,
                 (Example("a b", ("c",)),), TaskSpec(kind="cloze", target_delimiter=" "))
    r = evaluate_task(MODEL, params, tok, cloze, 0, scorer=scorer)
    lp = direct_logp(params, [256, *tok.encode("the cat sat on the")], tok.encode(" mat"))
    assert r["ppl"] == pytest.approx(np.exp(-lp), rel=1e-4)
    text = "rolling windows cover every token of a document longer than th"  # 62 bytes
    doc = Task("r", (Example(text),), (), TaskSpec(kind="rolling"))
    r = evaluate_task(MODEL, params, tok, doc, 0, scorer=scorer, samples=True)
    ids, W = [256, *tok.encode(text)], MODEL.max_len - 1
    assert len(ids) == 2 * W + 1  # two full windows, the second after one token of context
    expect = sum(direct_logp(params, ids[max(0, s - (MODEL.max_len - len(ids[s:s + W]))):s],
                             ids[s:s + W]) for s in range(1, len(ids), W))
    assert r["samples"][0]["logp"] == pytest.approx(expect, rel=1e-4)
    assert r["bits_per_byte"] == pytest.approx(-expect / np.log(2) / len(text), rel=1e-4)


def test_few_shot_prompt_for_a_fixed_seed():
    demos = tuple(Example(f"Q{i}?", (f"a{i}",)) for i in range(5))
    task = Task("t", (Example("Q?", ("a",)),), demos,
                TaskSpec(kind="generate", separator="\n###\n", target_delimiter=" "))
    p = build_prompt(task, task.examples[0], 2, random.Random(7))
    picked = random.Random(7).sample(range(5), 2)  # the oracle: Python's own draw
    assert p.text == f"Q{picked[0]}? a{picked[0]}\n###\nQ{picked[1]}? a{picked[1]}\n###\nQ?"
    assert p.shots == 2 and not p.truncated
    # more shots than demos: all of them; too long: demonstrations dropped from the left
    assert build_prompt(task, task.examples[0], 9, random.Random(0)).shots == 5
    short = build_prompt(task, task.examples[0], 4, random.Random(0), lambda t: len(t) < 30)
    assert short.text.endswith("\n###\nQ?") and len(short.text) < 30 and short.truncated
    fit = build_prompt(task, task.examples[0], MAX_SHOTS, random.Random(0), lambda t: len(t) < 30)
    assert fit.shots == short.shots and not fit.truncated
    assert build_prompt(task, task.examples[0], 3, random.Random(0), lambda t: False).text == "Q?"


def test_arithmetic_matches_gpt3_definitions():
    rng = random.Random(0)
    for name in synthetic.ARITHMETIC[:-1]:
        n, op = int(name[0]), name[2]
        for _ in range(50):
            ex = synthetic.arithmetic_example(name, rng)
            a, word, b = re.fullmatch(r"Q: What is (\d+) (\w+) (\d+)\? A:", ex.context).groups()
            assert int(a) < 10 ** n and int(b) < 10 ** n
            assert word == {"+": "plus", "-": "minus", "x": "times"}[op]
            want = {"+": int(a) + int(b), "-": int(a) - int(b), "x": int(a) * int(b)}[op]
            assert ex.choices[0] == str(want)
    ex = synthetic.arithmetic_example("1DC", random.Random(3))
    a, o1, b, o2, c = re.fullmatch(r"Q: What is (\d)([-+*])\((\d)([-+*])(\d)\)\? A:",
                                   ex.context).groups()
    ops = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}
    assert ex.choices[0] == str(ops[o1](int(a), ops[o2](int(b), int(c))))
    assert synthetic.arithmetic_example("2D+", random.Random(1)).context.startswith("Q: What is")


def test_word_scrambles_match_gpt3_definitions():
    rng = random.Random(0)
    for _ in range(30):
        ex = synthetic.scramble_example("A1", rng)
        w, s = ex.choices[0], ex.context.split("\n")[1][:-2]
        assert 4 < len(w) < 15 and s[0] == w[0] and s[-1] == w[-1] and sorted(s) == sorted(w)
        w2 = synthetic.SCRAMBLES["A2"](w, rng)
        assert w2[:2] == w[:2] and w2[-2:] == w[-2:] and sorted(w2) == sorted(w)
        c = synthetic.SCRAMBLES["CL"](w, rng)
        assert c != w and c in w + w  # a rotation
        ri = synthetic.SCRAMBLES["RI"](w, rng)
        assert ri[::2] == w and len(ri) == 2 * len(w) - 1
        assert synthetic.SCRAMBLES["RW"](w, rng) == w[::-1]
    assert synthetic.SCRAMBLES["RW"]("objects", rng) == "stcejbo"
    a = synthetic.synthetic_task("kv_recall", 5, 0)
    assert a == synthetic.synthetic_task("kv_recall", 5, 0) and a.examples != a.demos
    for ex in a.examples:
        pairs = dict(p.split("=") for p in ex.context.split(". ")[0].split())
        assert pairs[ex.context[-2]] == ex.choices[0]


def test_top_p_keeps_the_smallest_set_with_enough_mass():
    logits = jnp.log(jnp.asarray([[0.15, 0.5, 0.05, 0.3]]))
    kept = lambda p: set(np.flatnonzero(np.isfinite(np.asarray(nucleus(logits, p))[0])))  # noqa: E731
    assert kept(0.5) == {1}
    assert kept(0.8) == {1, 3}  # 0.5 + 0.3 reaches 0.8
    assert kept(0.81) == {1, 3, 0}
    assert kept(1.0) == {0, 1, 2, 3}


def test_stop_sequences_and_answer_metrics():
    assert cut_at_stop("42\nQ: next", ("\n",)) == "42"
    assert cut_at_stop("abc###def", ("#", "c#")) == "ab"
    assert cut_at_stop("no stop", ("\n",)) == "no stop"
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert exact_match("the answer.", ["Answer"]) == 1.0
    assert token_f1("red big cat", ["the big cat"]) == pytest.approx(0.8)  # P 2/3, R 1


def test_batched_generation_of_different_lengths_equals_one_at_a_time(toy):
    params, _ = toy
    prompts = [[256, 5, 9, 12], [256, 40], [256, *range(60, 79)]]
    alone = []
    for p in prompts:  # one prompt at a time, the whole sequence recomputed for every token
        seq = list(p)
        for _ in range(6):
            padded = jnp.asarray([seq + [0] * (MODEL.max_len - len(seq))])
            seq.append(int(np.argmax(np.asarray(forward(params, padded))[0, len(seq) - 1])))
        alone.append(seq[len(p):])
    texts, stats = generate_batch(MODEL, params, ByteTokenizer(), prompts, new_tokens=6,
                                  batch=3)  # left-padded to 32 - 6 slots, one batch
    assert texts == [ByteTokenizer().decode(a) for a in alone] and stats["truncated"] == 0
    ids = np.zeros((3, 26), np.int32)
    for j, p in enumerate(prompts):
        ids[j, 26 - len(p):] = p
    batched = generate(MODEL, params, jnp.asarray(ids), jax.random.key(0), new_tokens=6,
                       temperature=0.0, lengths=jnp.asarray([len(p) for p in prompts]))
    assert np.asarray(batched).tolist() == alone


@pytest.mark.slow
def test_generation_on_8_devices_equals_one(toy):
    """Parameters laid out on a (2, 2, 2) mesh as in training, rows split over its batch
    axes: the same tokens as one device, greedy and sampled (top-k, top-p)."""
    from scaling import sharding
    from scaling.config import MeshConfig

    params, _ = toy
    mesh = sharding.make_mesh(MeshConfig(data=2, fsdp=2, tensor=2), jax.devices()[:8])
    boxed = jax.eval_shape(lambda: gpt.GPT(MODEL).init(jax.random.key(0),
                                                       jnp.zeros((1, 8), jnp.int32)))["params"]
    sharded = jax.device_put(params, sharding.logical_shardings(boxed, mesh))
    prompts = [[256, 5, 9, 12], [256, 40], [256, *range(60, 79)], [256, 7, 7]]
    for sampling in ({}, {"temperature": 0.8, "top_k": 40, "top_p": 0.9}):
        one, _ = generate_batch(MODEL, params, ByteTokenizer(), prompts, new_tokens=6,
                                batch=4, seed=3, **sampling)
        eight, _ = generate_batch(MODEL, sharded, ByteTokenizer(), prompts, new_tokens=6,
                                  batch=4, seed=3, mesh=mesh, **sampling)
        assert eight == one, sampling


def test_yaml_task_and_bad_task_files(tmp_path):
    rows = [{"context": f"Q{i}?", "answers": [f"a{i}"]} for i in range(3)]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "train.jsonl").write_text(json.dumps({"context": "D?", "target": "d"}) + "\n")
    (tmp_path / "t.yaml").write_text("name: qa\nkind: generate\ntest: test.jsonl\n"
                                     "train: train.jsonl\nstop: [\"\\n\", \".\"]\n"
                                     "target_delimiter: ' '\n")
    task = yaml_task(str(tmp_path / "t.yaml"))
    assert task.name == "qa" and task.spec.stop == ("\n", ".") and len(task.examples) == 3
    assert task.demos == (Example("D?", ("d",)),)
    (tmp_path / "bad.yaml").write_text("test: test.jsonl\nshots: 3\n")
    with pytest.raises(UserError, match="unknown keys"):
        yaml_task(str(tmp_path / "bad.yaml"))
    with pytest.raises(UserError, match="is a directory"):
        jsonl_task(str(tmp_path))
    (tmp_path / "latin1.jsonl").write_bytes(b'{"context": "caf\xe9"}\n')
    with pytest.raises(UserError, match="not UTF-8"):
        jsonl_task(str(tmp_path / "latin1.jsonl"))


def test_train_eval_tasks_names_are_checked():
    from scaling.config import ConfigError
    from scaling.eval.task_names import parse_eval_tasks

    assert parse_eval_tasks("2D+@4, next_line,jsonl:x.jsonl") == [
        ("2D+", 4), ("next_line", 0), ("jsonl:x.jsonl", 0)]
    with pytest.raises(ConfigError, match="'lambada'"):
        parse_eval_tasks("lambada")
    with pytest.raises(ConfigError, match="'copy@x'"):
        parse_eval_tasks("copy@x")
