"""One test per class of failure a fuzz of the newer commands found (docs/reliability.md,
"Fuzz classes"): each class is fixed where the input is parsed, so the tests feed each
parser the kinds of values that broke it (wrong types, unbounded sizes, mixed layouts,
misleading messages) and name the one line they expect. None of them trains a model."""

import json

import pytest

from scaling.cli import main
from scaling.config import FinetuneConfig, apply_overrides
from scaling.errors import UserError
from scaling.presets import get_preset


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scaling: error: "), err
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------------------------
# Fine-tuning task files: the layout from every record, bounded labels, honest messages.


def _task(root, train: str, dev: str | None = None, ext="jsonl"):
    root.mkdir(exist_ok=True)
    (root / f"train.{ext}").write_text(train, encoding="utf-8")
    (root / f"validation.{ext}").write_text(dev if dev is not None else train, encoding="utf-8")
    return FinetuneConfig(task=str(root))


def _rows(*rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def _load(ft):
    from scaling.data.sources.task_files import load_task

    return load_task(ft)


def test_task_layout_is_decided_from_every_record(tmp_path):
    """Line 1 without text_pair no longer drops every later line's pair: a mix is refused
    with the file and line; the same for choices."""
    mixed = _rows({"text": "a", "label": 0}, {"text": "b", "text_pair": "x", "label": 1})
    with pytest.raises(
        UserError,
        match=r"train.jsonl line 2: a field 'text_pair', but .*"
        r"train.jsonl line 1 lacks",
    ):
        _load(_task(tmp_path / "pair", mixed))
    mc = _rows({"text": "q", "choices": ["a", "b"], "label": 0}, {"text": "r", "label": 1})
    with pytest.raises(UserError, match=r"train.jsonl line 2: no field 'choices', but"):
        _load(_task(tmp_path / "mc", mc))
    pairs = _rows(
        {"text": "a", "text_pair": "x", "label": 0}, {"text": "b", "text_pair": "y", "label": 1}
    )
    assert _load(_task(tmp_path / "ok", pairs)).has_pair


@pytest.mark.parametrize(
    "label,needle",
    [
        ("1000000", "not below 10000"),  # a 1.3 GB head before
        ("1000000000", "not below 10000"),  # hung before
        ("1" + "0" * 400, "far too large"),  # an OverflowError traceback before
        ("1" * 5000, "unreadable JSON"),  # Python's 4300-digit limit: a ValueError traceback
    ],
)
def test_labels_are_bounded(tmp_path, label, needle):
    train = '{"text": "a", "label": 0}\n{"text": "b", "label": ' + label + "}\n"
    with pytest.raises(UserError, match=needle):
        _load(_task(tmp_path / "t", train, _rows({"text": "a", "label": 0})))


def test_one_choice_multiple_choice_is_refused(tmp_path):
    rows = _rows(
        {"text": "q", "choices": ["a"], "label": 0}, {"text": "r", "choices": ["b"], "label": 0}
    )
    with pytest.raises(UserError, match=r"1 choice\(s\); a multiple-choice task needs 2 to 64"):
        _load(_task(tmp_path / "t", rows))


def test_task_file_messages_point_the_right_way(tmp_path):
    """A UTF-8 BOM is not part of the first field's name; a null field is called null."""
    csv = "\ufefftext,label\na,0\nb,1\n"
    task = _load(_task(tmp_path / "bom", csv, ext="csv"))
    assert [e.text for e in task.splits["train"]] == ["a", "b"]
    null = _rows({"text": None, "label": 0}, {"text": "b", "label": 1})
    with pytest.raises(UserError, match=r"train.jsonl line 1: field 'text' is null"):
        _load(_task(tmp_path / "null", null))


def test_a_preset_that_is_not_the_backbone_is_refused_at_once(tmp_path, capsys):
    """`finetune --config bert-tiny` on a gpt backbone: one line before any work (it was a
    tokenizer mismatch after 24 s)."""
    run = tmp_path / "gpt"
    run.mkdir()
    (run / "config.json").write_text(get_preset("gpt-tiny").to_json())
    task = _task(tmp_path / "t", _rows({"text": "a", "label": 0}, {"text": "b", "label": 1}))
    code = main(
        [
            "finetune",
            "--init_from",
            str(run),
            "--task",
            task.task,
            "--workdir",
            str(tmp_path / "w"),
            "--config",
            "bert-tiny",
        ]
    )
    assert code == 2
    assert "--config bert-tiny does not describe the backbone" in one_line(capsys)


# --------------------------------------------------------------------------------------------
# Files parsed with types: eval task YAML, sweep specs.


@pytest.mark.parametrize(
    "line,needle",
    [
        ("stop: 1", "stop: 1 is not text"),
        ("separator: 3", "separator: 3 is not text"),
        ("target_delimiter: [a]", r"target_delimiter: \['a'\] is not text"),
        ("max_new_tokens: .inf", "max_new_tokens: inf is not a whole number"),
        ("max_new_tokens: 100000", "from 1 to 4096"),
        ("kind: ~", "kind: None is not text"),
        ("blank: maybe", "blank: 'maybe' is not true or false"),
        ("name: 5", "name: 5 is not text"),
    ],
)
def test_eval_task_yaml_is_type_checked(tmp_path, line, needle):
    from scaling.eval.tasks import yaml_task

    (tmp_path / "t.jsonl").write_text(
        _rows({"context": "a", "choices": ["x", "y"], "answer": 0}) * 3
    )
    (tmp_path / "t.yaml").write_text(f"test: t.jsonl\n{line}\n")
    with pytest.raises(UserError, match=needle):
        yaml_task(str(tmp_path / "t.yaml"))


@pytest.mark.parametrize(
    "spec,needle",
    [
        ({"tokens": [float("inf")]}, "tokens: expected a finite number"),
        ({"tokens": [float("nan")]}, "tokens: expected a finite number"),
        ({"tokens": [True]}, "tokens: expected a number, got True"),
        ({"tokens": [None]}, "tokens: expected a number, got None"),
        ({"tokens": ["abc"]}, "tokens: expected a number, got 'abc'"),
        ({"tokens": [1e30]}, "more than 1e\\+15 tokens"),
        ({"tokens": [1e6], "base": 3}, "base: expected text"),
        ({"tokens": [1e6], "lr": float("nan")}, "lr \\(d_model=64\\): expected a finite number"),
        ({"tokens": [1e6], "settings": {"train.seed": [1]}}, "train.seed: expected one value"),
    ],
)
def test_sweep_specs_are_type_checked(spec, needle):
    from scaling.laws.sweep import SpecError, expand

    full = {
        "base": "gpt-tiny",
        "models": [{"n_layers": 1, "d_model": 64, "n_heads": 2, "d_ff": 128}],
        **spec,
    }
    with pytest.raises(SpecError, match=needle):
        expand(full)


# --------------------------------------------------------------------------------------------
# One bound per quantity; integers parsed as integers.


@pytest.mark.parametrize(
    "args,needle",
    [
        (["translate", "--workdir", "x", "--input", "x", "--beam", "10000"], "--beam 10000"),
        (["translate", "--workdir", "x", "--input", "x", "--batch", "100000000"], "--batch"),
        (["generate", "--workdir", "x", "--prompt", "a", "--batch", "100000000"], "--batch"),
        (["eval", "--workdir", "x", "--tasks", "bleu", "--alpha", "inf"], "--alpha inf"),
        (["eval", "--workdir", "x", "--tasks", "next_line", "--shots", "-1"], "--shots '-1'"),
        (["params", "--config", "gpt-tiny", "--set", "train.steps=1e23"], "write it in digits"),
        (
            ["params", "--config", "gpt-tiny", "--set", "train.steps=10000000000"],
            "more than 1e+09 steps",
        ),
        (
            ["eval", "--workdir", "x", "--harness", "t", "--harness-include", "/nonexistent/d"],
            "--harness-include /nonexistent/d does not exist",
        ),
    ],
)
def test_requests_beyond_their_bound_are_one_line(args, needle, capsys):
    assert main(args) == 2
    assert needle in one_line(capsys)


def test_integers_are_parsed_as_integers():
    config = apply_overrides(
        get_preset("gpt-tiny"), ["data.seed=9007199254740993", "train.steps=2e3"]
    )
    assert (config.data.seed, config.train.steps) == (9007199254740993, 2000)


def test_a_file_given_for_a_directory_is_called_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert (
        main(["convert", "--from-hf", str(tmp_path / "f"), "--workdir", str(tmp_path / "w")]) == 2
    )
    assert "is a file; give the model's directory" in one_line(capsys)
    assert (
        main(["eval", "--workdir", "x", "--harness", "t", "--harness-include", str(tmp_path / "f")])
        == 2
    )
    assert "--harness-include" in one_line(capsys)


# --------------------------------------------------------------------------------------------
# The lm-eval encoding and --stop escapes.


def test_pairs_are_encoded_as_lm_eval_encodes_them():
    """lm_eval.api.model.LM._encode_pair for a causal model, by hand on the byte tokenizer:
    the trailing space moves to the continuation; an empty context is the prefix token."""
    from scaling.data.tokenizers import ByteTokenizer
    from scaling.eval.encoding import encode_pair

    tok = ByteTokenizer()
    b = [x + 7 for x in b"Q: a b"]  # ids of the context without its trailing space
    assert encode_pair(tok, "Q: a b ", "c") == ((2, *b), (ord(" ") + 7, ord("c") + 7))
    tok.add_bos = False
    assert encode_pair(tok, "Q: a b ", "c") == (tuple(b), (ord(" ") + 7, ord("c") + 7))
    assert encode_pair(tok, "", "c") == ((2,), (ord("c") + 7,))


def test_stop_takes_escapes():
    from scaling.eval.encoding import parse_escapes

    assert parse_escapes(r"\n") == "\n" and parse_escapes(r"A:\t") == "A:\t"
    assert parse_escapes("Café\\n東京") == "Café\n東京"  # other characters kept
    with pytest.raises(UserError, match="bad backslash escape"):
        parse_escapes("\\x")
