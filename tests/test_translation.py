"""Translation end to end on local files: a tiny encoder-decoder learns a word-for-word
transduction from TSV files (BLEU > 95 with sacreBLEU), `scaling translate` keeps lines in
order and answers bad input with one line and exit 2; the generated CLDR corpus is
deterministic, real German and split without overlap."""

import json
import random

import pytest

from scaling.cli import main
from scaling.data.sources.parallel import split_pairs
from scaling.data.sources.translation import Generator, generate_pairs, split_of
from scaling.presets import get_preset

LEXICON = {  # a fixed English -> German word map
    "red": "rot", "blue": "blau", "green": "grün", "black": "schwarz", "white": "weiß",
    "dog": "Hund", "cat": "Katze", "horse": "Pferd", "bird": "Vogel", "fish": "Fisch",
    "big": "groß", "small": "klein", "old": "alt", "new": "neu", "fast": "schnell",
    "house": "Haus", "tree": "Baum", "river": "Fluss", "city": "Stadt", "road": "Straße",
}
STEPS = ["--set", "model.max_len=64", "--set", "train.seq_len=24", "--set", "train.steps=400",
         "--set", "train.global_batch=32", "--set", "train.eval_every=400",
         "--set", "train.checkpoint_every=400", "--set", "train.log_every=100",
         "--set", "train.eval_batches=1", "--set", "train.eval_bleu=0",
         "--set", "optim.warmup_steps=100", "--set", "optim.lr=3e-3",
         "--set", "data.vocab_size=512", "--set", "model.dropout=0.0",
         "--set", "model.attn_dropout=0.0"]


def sentence(rng):
    words = [rng.choice(sorted(LEXICON)) for _ in range(rng.randint(3, 6))]
    return " ".join(words), " ".join(LEXICON[w] for w in words)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tsv")
    rng = random.Random(0)
    pairs = {sentence(rng) for _ in range(4000)}
    lines = [f"{s}\t{t}" for s, t in sorted(pairs)]
    (root / "a.tsv").write_text("\n".join(lines[::2]) + "\n", encoding="utf-8")
    (root / "b.tsv").write_text("\n".join(lines[1::2]) + "\n", encoding="utf-8")
    workdir = root / "run"
    assert main(["train", "--config", "transformer-tiny", "--workdir", str(workdir), "--quiet",
                 "--data", f"tsv:{root}/*.tsv", "--set", f"data.cache_dir={root / 'cache'}",
                 *STEPS]) == 0
    return root, workdir


@pytest.mark.slow
def test_a_word_map_is_learned_to_bleu_above_95(run, capsys):
    _, workdir = run
    capsys.readouterr()
    assert main(["eval", "--workdir", str(workdir), "--tasks", "bleu", "--beam", "4"]) == 0
    out = capsys.readouterr().out
    assert "BLEU" in out and "nrefs:1" in out  # sacreBLEU's signature is printed
    rows = [json.loads(line) for line in (workdir / "eval.jsonl").read_text().splitlines()]
    assert rows[-1]["task"] == "bleu" and rows[-1]["n"] > 10
    assert rows[-1]["bleu"] > 95, rows[-1]


@pytest.mark.slow
def test_translate_keeps_order_empty_lines_and_warns_on_a_cut(run, tmp_path, capsys):
    _, workdir = run
    long = " ".join(["red dog"] * 60)  # far beyond model.max_len = 64 tokens
    src = tmp_path / "in.txt"
    src.write_text("red dog house\n\nbig old house\n" + long + "\nfast small bird\n",
                   encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", "--workdir", str(workdir), "--input", str(src),
                 "--beam", "2", "--batch", "4"]) == 0
    out, err = capsys.readouterr()
    lines = out.split("\n")[:-1]
    assert len(lines) == 5 and lines[1] == ""
    assert lines[0] == "rot Hund Haus" and lines[2] == "groß alt Haus"
    assert lines[4] == "schnell klein Vogel"
    assert "line 4:" in err and "cut to model.max_len=64" in err


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "directory", "binary", "gpt_run", "no_run"])
def test_bad_translate_input_is_one_line_and_exit_2(run, tmp_path, capsys, case):
    _, workdir = run
    path = tmp_path / "in.txt"
    if case == "binary":
        path.write_bytes(b"\xff\xfe bad")
    elif case == "directory":
        path = tmp_path
    target = workdir
    if case == "gpt_run":
        target = tmp_path / "gpt"
        target.mkdir()
        (target / "config.json").write_text(json.dumps(get_preset("gpt-tiny").to_dict()))
        path.write_text("hello\n")
    elif case == "no_run":
        target = tmp_path / "nothing"
        path.write_text("hello\n")
    capsys.readouterr()
    assert main(["translate", "--workdir", str(target), "--input", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    needle = {"missing": "no such file", "directory": "is a directory", "binary": "not UTF-8",
              "gpt_run": "does not translate", "no_run": "not a run directory"}[case]
    assert needle in err


# --------------------------------------------------------------------------------------------
# The generated corpus.


def test_cldr_corpus_is_deterministic_real_german_and_split_without_overlap():
    a, b = generate_pairs("en", "de", seed=3, n=3000), generate_pairs("en", "de", seed=3, n=3000)
    assert a == b
    assert generate_pairs("en", "de", seed=4, n=3000) != a
    sources = {split: {s for s, _ in pairs} for split, pairs in a.items()}
    assert not sources["train"] & sources["test"] and not sources["train"] & sources["validation"]
    assert all(split_of(s) == split for split, ss in sources.items() for s in ss)
    gen = Generator("en", "de")
    assert gen._words(21, "de") == "einundzwanzig" and gen._words(21, "en") == "twenty-one"
    pairs = dict(p for ps in a.values() for p in ps)
    assert any(t.startswith("Wir reisen nach ") for t in pairs.values())
    # CLDR's own German: dates put the day first and write the month out
    import datetime

    from babel.dates import format_date

    assert format_date(datetime.date(2024, 3, 5), "long", locale="de") == "5. März 2024"


def test_tiny_local_corpora_still_get_three_splits():
    pairs = [(f"s{i}", f"t{i}") for i in range(3)]
    out = split_pairs(pairs)
    assert all(out[s] for s in ("train", "validation", "test"))
    assert sorted(sum(out.values(), [])) == sorted(pairs)


def test_jsonl_parallel_files_keep_working(tmp_path):
    from scaling.config import apply_overrides
    from scaling.data.api import load_seq2seq_data

    rng = random.Random(1)
    with open(tmp_path / "pairs.jsonl", "w", encoding="utf-8") as f:
        for _ in range(300):
            s, t = sentence(rng)
            f.write(json.dumps({"en": s, "de": t, "other": 1}) + "\n")
    config = apply_overrides(get_preset("transformer-tiny"), [
        f"data.source=jsonl:{tmp_path}/*.jsonl", "data.input_field=en", "data.target_field=de",
        "data.tokenizer=byte", f"data.cache_dir={tmp_path / 'cache'}", "train.global_batch=8",
        "train.seq_len=48"])
    data = load_seq2seq_data(config, process_index=0, process_count=1)
    assert data.fields == ("en", "de") and set(data.corpus.splits) == {"train", "validation",
                                                                        "test"}
    b = data.batch(0)
    tok = data.tokenizer
    src = tok.decode(b["inputs"][0][b["input_segment_ids"][0] == 1])
    tgt = tok.decode(b["targets"][0][b["weights"][0] == 1])
    assert " ".join(LEXICON[w] for w in src.split()) == tgt
