"""The few-shot harness: choice packing by hand, scores against a direct computation,
prompt format, task-file errors."""

import json
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from scaling.config import ModelConfig
from scaling.errors import UserError
from scaling.eval.fewshot import pack_choice, score
from scaling.eval.tasks import Example, Task, few_shot_prompt, jsonl_task, next_line_task
from scaling.models import gpt


def test_pack_choice_by_hand():
    inputs, targets, weights = pack_choice([2, 10, 11], [20, 21], 8)
    assert inputs.tolist() == [2, 10, 11, 20, 0, 0, 0, 0]
    assert targets.tolist() == [10, 11, 20, 21, 0, 0, 0, 0]
    assert weights.tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    # too long: the prompt loses its oldest tokens, the choice stays whole
    inputs, targets, weights = pack_choice(list(range(1, 10)), [20, 21], 4)
    assert inputs.tolist() == [7, 8, 9, 20] and targets.tolist() == [8, 9, 20, 21]
    assert weights.tolist() == [0, 0, 1, 1]
    with pytest.raises(UserError, match="does not fit"):
        pack_choice([1], [5] * 9, 8)


@pytest.mark.slow
def test_scores_equal_direct_log_likelihood():
    model = ModelConfig(vocab_size=32, n_layers=1, d_model=16, n_heads=2, d_ff=32, max_len=8,
                        dropout=0.0, attn_dropout=0.0, dtype="float32")
    ids = jnp.zeros((1, 8), jnp.int32)
    params = nn.unbox(gpt.GPT(model).init(jax.random.key(0), ids)["params"])
    prompt, choice = [2, 7, 9], [4, 5, 6]
    got = score(model, params, [pack_choice(prompt, choice, 8)])[0]
    seq = jnp.asarray([prompt + choice])  # [1, 6]
    logits = np.asarray(gpt.GPT(model).apply({"params": params}, seq), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))  # [1, 6, V]
    expect = sum(logp[0, t - 1, seq[0, t]] for t in range(3, 6))  # choice tokens 3..5
    assert got == pytest.approx(expect, rel=1e-5)


def test_few_shot_prompt_format():
    demos = (Example("a=", ("1", "2"), 0), Example("b=", ("3", "4"), 1))
    ex = Example("c=", ("5", "6"), 0)
    task = Task("t", (ex,), demos)
    assert few_shot_prompt(task, ex, 0, random.Random(0)) == "c="
    two = few_shot_prompt(task, ex, 2, random.Random(0))
    assert sorted(two.split("\n\n")[:2]) == ["a=1", "b=4"] and two.endswith("\n\nc=")


def test_next_line_task_keeps_the_true_line():
    docs = [f"doc {d}\n" + "".join(f"line {d}.{i}\n" for i in range(10)) for d in range(6)]
    task = next_line_task(docs, 20, seed=1)
    assert len(task.examples) == 20 and len(task.demos) == 20
    for ex in task.examples:
        last = ex.context.splitlines()[-1]  # "line d.i" or "doc d"
        d = last.split()[1].split(".")[0]
        i = int(last.split(".")[1]) + 1 if "." in last else 0
        assert ex.choices[ex.answer] == f"line {d}.{i}"


@pytest.mark.parametrize("lines,needle", [
    (['{"context": "x", "choices": ["a"], "answer": 0}'] * 3, "2 or more"),
    (['{"context": "x", "choices": ["a", "b"], "answer": 2}'] * 3, "index of the right"),
    (["{not json"], "not valid JSON"),
    (['{"context": "x", "choices": ["a", "b"], "answer": 0}'], "at least 2 examples"),
])
def test_bad_task_files(lines, needle, tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UserError, match=needle):
        jsonl_task(str(path))
    with pytest.raises(UserError, match="does not exist"):
        jsonl_task(str(tmp_path / "none.jsonl"))


def test_jsonl_task_splits_demos_from_scored_examples(tmp_path):
    rows = [{"context": f"q{i}", "choices": ["a", "b"], "answer": i % 2} for i in range(40)]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    task = jsonl_task(str(path), n_demos=16)
    assert len(task.demos) == 16 and len(task.examples) == 24
    assert not set(task.demos) & set(task.examples)
