"""Peer oracles no one here wrote: `transformers`' greedy generation and lm-evaluation-harness's
own `hf` model, on a tiny random GPT-2 built from a config (no hub), against the same model
converted with `scaling convert --from-hf`."""

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
from test_convert import _randomize, _train_tokenizer  # noqa: E402

from scaling.cli import main  # noqa: E402

V = 300
# contexts ending in a space and choices starting without one: lm-eval moves the space into
# the continuation and encodes the pair as one string, which a tokenizer merging " word"
# into one token scores differently from the two halves encoded apart
EXAMPLES = [
    {"context": "The quick brown", "choices": ["fox", "dog", "tabs"], "answer": 0},
    {"context": "def f(x):\n    return", "choices": ["x * 2", "Café"], "answer": 0},
    {"context": "Café, naïve —", "choices": ["東京", "lazy dog", "spaces."], "answer": 0},
    {"context": "jumps over the", "choices": ["lazy", "quick", "brown fox"], "answer": 0},
    {"context": "tabs\tand", "choices": ["spaces", "comment", "naïve"], "answer": 0},
    {"context": "The lazy", "choices": ["dog.", "fox", "Café"], "answer": 0},
]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """(HF model directory with its tokenizer, the converted run directory)."""
    root = tmp_path_factory.mktemp("peer")
    model = _randomize(
        transformers.GPT2LMHeadModel(
            transformers.GPT2Config(
                vocab_size=V,
                n_positions=32,
                n_embd=32,
                n_layer=2,
                n_head=4,
                bos_token_id=0,
                eos_token_id=0,
                attn_implementation="eager",
            )
        )
    )
    directory, run = str(root / "gpt2"), str(root / "run")
    model.save_pretrained(directory)
    _train_tokenizer(directory)
    assert main(["convert", "--from-hf", directory, "--workdir", run]) == 0
    return directory, run, model


@pytest.mark.slow
def test_greedy_generate_equals_transformers_without_bos(gpt2, capsys):
    """`scaling generate --temperature 0` on the converted GPT-2 prints the text HF's greedy
    `generate` makes from the prompt as HF's tokenizer encodes it (GPT-2's adds no bos)."""
    directory, run, model = gpt2
    tok = transformers.AutoTokenizer.from_pretrained(directory)
    for prompt in ("The quick", "def f(x):\n", "Café"):
        assert (
            main(
                [
                    "generate",
                    "--workdir",
                    run,
                    "--prompt",
                    prompt,
                    "--max-new-tokens",
                    "6",
                    "--temperature",
                    "0",
                ]
            )
            == 0
        )
        printed = capsys.readouterr().out.removesuffix("\n")
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(
                **ids, max_new_tokens=6, do_sample=False, pad_token_id=tok.eos_token_id
            )[0, ids["input_ids"].shape[1] :]
        new = out.tolist()
        new = new[: new.index(tok.eos_token_id)] if tok.eos_token_id in new else new
        assert printed == prompt + tok.decode(new, skip_special_tokens=True), prompt


def _task_dir(root) -> str:
    data = root / "mc.jsonl"
    data.write_text("".join(json.dumps(e) + "\n" for e in EXAMPLES), encoding="utf-8")
    (root / "tasks").mkdir()
    (root / "tasks" / "peer_mc.yaml").write_text(
        f"""task: peer_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}} "
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
target_delimiter: ""
metric_list:
  - metric: acc
  - metric: acc_norm
""",
        encoding="utf-8",
    )
    return str(root / "tasks")


@pytest.mark.slow  # lm-eval's task building: ~1 min on the 2-core VM
def test_harness_equals_lm_evals_own_hf_model(gpt2, tmp_path, monkeypatch, capsys):
    """`scaling eval --harness` on the converted run gives lm-eval's `hf` model's acc,
    acc_norm and per-choice log-likelihoods on a local multiple-choice task."""
    pytest.importorskip("lm_eval")
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    directory, run, _ = gpt2
    tasks = _task_dir(tmp_path)
    peer = HFLM(
        pretrained=directory, tokenizer=directory, batch_size=1, device="cpu", dtype="float32"
    )
    theirs = simple_evaluate(
        model=peer,
        tasks=["peer_mc"],
        num_fewshot=0,
        log_samples=True,
        task_manager=TaskManager(include_path=tasks),
    )
    out = tmp_path / "ours.json"
    assert (
        main(
            [
                "eval",
                "--workdir",
                run,
                "--harness",
                "peer_mc",
                "--harness-include",
                tasks,
                "--output",
                str(out),
            ]
        )
        == 0
    )
    capsys.readouterr()
    ours = json.loads(out.read_text())
    for metric in ("acc,none", "acc_norm,none"):
        assert ours["results"]["peer_mc"][metric] == theirs["results"]["peer_mc"][metric]

    def logps(res):
        docs = sorted(res["samples"]["peer_mc"], key=lambda d: d["doc_id"])
        return [float(c[0][0]) for d in docs for c in d["resps"]]

    np.testing.assert_allclose(logps(ours), logps(theirs), atol=1e-4, rtol=0)
    assert os.path.isdir(tasks)
