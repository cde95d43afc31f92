"""Fine-tuned runs export to the HuggingFace class that holds their task head, with the
logits of `transformers`' own model equal to ours; commands that need a language-model head
refuse a fine-tuned run in one line."""

import json
import random

import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from scaling.cli import main  # noqa: E402

pytestmark = pytest.mark.slow  # module fixtures train runs: the full suite only

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
FT = [
    "train.global_batch=8",
    "train.steps=3",
    "train.eval_every=3",
    "train.checkpoint_every=3",
    "optim.lr=1e-2",
    "train.seq_len=24",
]


def _sets(items):
    return [a for item in items for a in ("--set", item)]


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    """A tiny random HF BERT converted into a run (the backbone)."""
    root = tmp_path_factory.mktemp("bert")
    torch.manual_seed(0)
    model = transformers.BertForPreTraining(
        transformers.BertConfig(
            vocab_size=263,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=32,
            attn_implementation="eager",
        )
    )
    model.save_pretrained(root / "hf")
    assert (
        main(
            [
                "convert",
                "--from-hf",
                str(root / "hf"),
                "--workdir",
                str(root / "run"),
                "--set",
                "data.tokenizer=byte",
            ]
        )
        == 0
    )
    return root


def _task(root, kind):
    rng = random.Random(0)
    (root / kind).mkdir()
    for split in ("train", "validation"):
        with open(root / kind / f"{split}.jsonl", "w") as f:
            for i in range(16):
                text = " ".join(rng.choice(WORDS) for _ in range(3))
                row = {"text": text, "label": i % 3}
                if kind == "multiple_choice":
                    row = {
                        "text": text,
                        "choices": [rng.choice(WORDS) for _ in range(3)],
                        "label": i % 3,
                    }
                f.write(json.dumps(row) + "\n")
    return str(root / kind)


def _batch(C, T=24, B=3):
    """Rows `[CLS] a [SEP]` (byte ids), C choices side by side, padded."""
    rng = np.random.default_rng(0)
    S = T // C if C else T
    ids, seg = np.zeros((B, T), np.int32), np.zeros((B, T), np.int32)
    for b in range(B):
        for c in range(max(C, 1)):
            n = int(rng.integers(4, S))
            ids[b, c * S : c * S + n] = [5, *rng.integers(7, 263, n - 2), 6]
            seg[b, c * S : c * S + n] = 1
    pos = np.tile(np.arange(S), (B, max(C, 1)))[:, :T].astype(np.int32)
    return ids, np.zeros_like(ids), pos, seg


@pytest.mark.parametrize(
    "kind", ["classification", "multiple_choice"]
)
def test_finetuned_bert_exports_with_equal_logits(bert, kind, tmp_path, capsys):
    from scaling.checkpoint.load import read_config
    from scaling.families import objective_of

    run, out = str(tmp_path / "ft"), str(tmp_path / "hf")
    assert (
        main(
            [
                "finetune",
                "--init_from",
                str(bert / "run"),
                "--task",
                _task(tmp_path, kind),
                "--workdir",
                run,
                "--quiet",
                *_sets(FT),
            ]
        )
        == 0
    )
    assert main(["convert", "--workdir", run, "--to-hf", out]) == 0
    assert (
        "BertForMultipleChoice" if kind == "multiple_choice" else "BertForSequenceClassification"
    ) in capsys.readouterr().out
    hf = transformers.AutoConfig.from_pretrained(out)
    model_cls = getattr(transformers, hf.architectures[0])
    theirs_model = model_cls.from_pretrained(out, attn_implementation="eager").eval()

    config = read_config(run)
    from scaling.checkpoint.manager import Checkpoints, checkpoint_dir

    ckpt = Checkpoints(checkpoint_dir(run), read_only=True)
    params = ckpt.restore_numpy(ckpt.latest_step())["params"]
    ckpt.manager.close()
    C = config.finetune.num_choices
    ids, types, pos, seg = _batch(C)
    model = objective_of(config).make_model(config, "eval")
    ours = np.asarray(jax.jit(model.apply)({"params": params}, ids, types, pos, seg))
    if C:  # HF: [B, C, S] choices as their own rows
        S = ids.shape[1] // C
        shape = (ids.shape[0], C, S)
        args = {
            k: torch.tensor(v[:, : C * S].reshape(shape), dtype=torch.long)
            for k, v in (
                ("input_ids", ids),
                ("token_type_ids", types),
                ("position_ids", pos),
                ("attention_mask", seg),
            )
        }
    else:
        args = {
            k: torch.tensor(v, dtype=torch.long)
            for k, v in (
                ("input_ids", ids),
                ("token_type_ids", types),
                ("position_ids", pos),
                ("attention_mask", seg),
            )
        }
    with torch.no_grad():
        theirs = theirs_model(**args).logits.numpy()
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)

    # commands that need a language-model head refuse the run in one line
    capsys.readouterr()
    for args in (
        ["generate", "--workdir", run, "--prompt", "a"],
        ["eval", "--workdir", run, "--tasks", "2D+"],
    ):
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"is a fine-tuned {kind} run" in err, err
