"""Our own runs survive a round trip through HuggingFace: `convert --to-hf` writes a model,
a tokenizer `AutoTokenizer` loads (tokenizer.json for SentencePiece and byte tokenizers too)
and a generation_config.json; `transformers`' own text-generation pipeline, the oracle,
greedily writes the text `scaling generate` writes; importing the export back gives a run
whose `generate` is the original's."""

import json
import os
import random

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from scaling.cli import main  # noqa: E402

SMALL = [
    "model.n_layers=2",
    "model.d_model=32",
    "model.n_heads=4",
    "model.d_ff=64",
    "model.max_len=32",
    "train.global_batch=8",
    "train.steps=6",
    "train.eval_every=100",
    "train.checkpoint_every=6",
    "optim.warmup_steps=2",
    "train.log_every=1",
]
PROMPTS = ["the quick", "alpha beta gamma", "Café 12"]


def _sets(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module", params=["sentencepiece"])  # byte: the unit test below
def exported(request, tmp_path_factory):
    """(run, its --to-hf export) of a gpt-tiny run with the given tokenizer."""
    root = tmp_path_factory.mktemp(f"rt-{request.param}")
    rng = random.Random(0)
    words = "the quick brown fox jumps over lazy dog alpha beta gamma Café 12 345".split()
    (root / "corpus.txt").write_text(
        "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(400)),
        encoding="utf-8",
    )
    extra = ["model.vocab_size=384", "data.tokenizer=sentencepiece"]
    if request.param == "byte":
        extra = ["model.vocab_size=263", "data.tokenizer=byte"]
    run, out = str(root / "run"), str(root / "hf")
    assert (
        main(
            [
                "train",
                "--config",
                "gpt-tiny",
                "--workdir",
                run,
                "--quiet",
                "--data",
                f"text:{root / 'corpus.txt'}",
                *_sets(SMALL + extra + [f"data.cache_dir={root / 'cache'}"]),
            ]
        )
        == 0
    )
    assert main(["convert", "--workdir", run, "--to-hf", out]) == 0
    return run, out


def _generate(run, prompt, capsys):
    capsys.readouterr()
    assert (
        main(
            [
                "generate",
                "--workdir",
                run,
                "--prompt",
                prompt,
                "--max-new-tokens",
                "10",
                "--temperature",
                "0",
            ]
        )
        == 0
    )
    return capsys.readouterr().out.removesuffix("\n")


@pytest.mark.slow
def test_export_carries_tokenizer_and_in_vocabulary_ids(exported):
    run, out = exported
    config = json.load(open(os.path.join(out, "config.json")))
    generation = json.load(open(os.path.join(out, "generation_config.json")))
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert 0 <= config[key] < config["vocab_size"] and generation[key] == config[key]
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tok.bos_token_id == config["bos_token_id"]
    assert tok.eos_token_id == config["eos_token_id"]


@pytest.mark.slow
def test_pipeline_text_equals_scaling_generate_and_import_back(exported, tmp_path, capsys):
    run, out = exported
    pipe = transformers.pipeline("text-generation", model=out, device="cpu")
    back = str(tmp_path / "back")
    assert main(["convert", "--from-hf", out, "--workdir", back]) == 0
    for prompt in PROMPTS:
        ours = _generate(run, prompt, capsys)
        theirs = pipe(prompt, max_new_tokens=10, do_sample=False)[0]["generated_text"]
        assert theirs == ours, prompt
        assert _generate(back, prompt, capsys) == ours, prompt


TEXTS = [
    "the quick brown fox",
    "Hello, World!\n  two  spaces\tand a tab 🙂",
    "",
    " lead",
    "trail ",
    "a\n\nb",
    "99 bottles, 1234567",
    "ξ unknown ẞ 東京 Café naïve",
]


@pytest.mark.parametrize("kind", ["sentencepiece", "byte"])
def test_tokenizer_json_encodes_and_decodes_as_ours(kind):
    """The exported tokenizer.json, read by the `tokenizers` library, gives our ids for any
    text (spaces, tabs, new lines, digits, characters outside the vocabulary: byte fallback)
    and decodes them to our text; bos first exactly when the run's sequences start with it."""
    from scaling.data.tokenizers import ByteTokenizer
    from scaling.data.tokenizers.sentencepiece import SentencePieceTokenizer, train_sentencepiece
    from scaling.hf.tokenizer_json import hf_backend

    rng = random.Random(0)
    words = "the quick brown fox jumps over lazy dog alpha 123 4567 Café naïve 東京".split()
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(2000)]
    tok = (
        SentencePieceTokenizer(train_sentencepiece(lines, 400, "bpe"))
        if kind == "sentencepiece"
        else ByteTokenizer()
    )
    theirs = hf_backend(tok, bos_prefix=True)
    for text in TEXTS + lines[:100]:
        ids = tok.encode(text)
        assert theirs.encode(text, add_special_tokens=False).ids == ids, text
        assert theirs.encode(text).ids == [tok.bos_id, *ids], text
        assert theirs.decode(ids, skip_special_tokens=True) == tok.decode(ids), text
    assert hf_backend(tok, bos_prefix=False).encode("the").ids == tok.encode("the")
