"""Small labelled tasks built offline from word-frequency lists, for fine-tuning demos.

    python -m scaling.data.sources.demo_tasks OUTDIR [--seed 0] [--train 4000] [--eval 800]

writes two task directories in the `scaling finetune --task DIR` format (one JSON object a
line, fields `text`, optional `text_pair`, `label`):

  OUTDIR/langid/         language identification: `text` is a "sentence" of 6-12 words drawn
                         from one language's word list, `label` the language's index in
                         LANGUAGES (en de fr es it nl: six balanced classes);
  OUTDIR/same_language/  a sentence-pair task: `text` and `text_pair` are two such sentences,
                         `label` 1 when they are in the same language, else 0 (balanced).

Each holds train.jsonl, validation.jsonl and test.jsonl, and OUTDIR/manifest.json says how
they were made. Words are the TOP_WORDS most frequent alphabetic words of each language in
the `wordfreq` package's lists (Speer et al., wordfreq 3), drawn with probability
proportional to their frequency, so sentences look like bags of real text words: frequent
function words carry most of the signal, and languages share some words ("a", "de", "in").
Every draw comes from a generator seeded by (seed, task, split): the same arguments write
the same files. wordfreq is needed only here; install it with `pip install wordfreq`.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np

from scaling.errors import UserError

LANGUAGES = ("en", "de", "fr", "es", "it", "nl")
TOP_WORDS = 3000
MIN_WORDS, MAX_WORDS = 6, 12
SPLITS = ("train", "validation", "test")
TASKS = ("langid", "same_language")

WordLists = dict[str, tuple[list[str], np.ndarray]]  # language -> (words, probabilities)


def word_lists(languages=LANGUAGES, top: int = TOP_WORDS) -> WordLists:
    """The `top` most frequent alphabetic words of each language and their normalized
    frequencies, from wordfreq (UserError naming the install command when it is missing)."""
    try:
        import wordfreq
    except ImportError:
        raise UserError("the demo tasks are built from the wordfreq package's word lists; "
                        "install it with `pip install wordfreq`") from None
    out = {}
    for lang in languages:
        words = [w for w in wordfreq.top_n_list(lang, 4 * top) if w.isalpha()][:top]
        freq = np.array([wordfreq.word_frequency(w, lang) for w in words], np.float64)
        out[lang] = (words, freq / freq.sum())
    return out


def sentence(words: list[str], probs: np.ndarray, rng: np.random.Generator) -> str:
    """MIN_WORDS..MAX_WORDS words drawn by frequency, space-separated."""
    n = int(rng.integers(MIN_WORDS, MAX_WORDS + 1))
    return " ".join(words[i] for i in rng.choice(len(words), size=n, p=probs))


def langid_examples(lists: WordLists, n: int, rng: np.random.Generator) -> list[dict]:
    """`n` sentences, each in a uniformly drawn language; label = its index in `lists`."""
    langs = list(lists)
    out = []
    for _ in range(n):
        label = int(rng.integers(len(langs)))
        out.append({"text": sentence(*lists[langs[label]], rng), "label": label})
    return out


def same_language_examples(lists: WordLists, n: int, rng: np.random.Generator) -> list[dict]:
    """`n` sentence pairs: label 1 (probability 1/2) both in one language, else 0 and in two
    different languages, each language uniform."""
    langs = list(lists)
    out = []
    for _ in range(n):
        label = int(rng.random() < 0.5)
        first = int(rng.integers(len(langs)))
        second = first
        if not label:
            second = int(rng.integers(len(langs) - 1))
            second += second >= first  # a different language, uniform over the others
        out.append({"text": sentence(*lists[langs[first]], rng),
                    "text_pair": sentence(*lists[langs[second]], rng), "label": label})
    return out


def build_tasks(outdir, lists: WordLists, *, seed: int = 0, train: int = 4000,
                evaluation: int = 800, source: str = "word lists given") -> dict[str, Path]:
    """Write both tasks under `outdir` (module doc); returns task name -> directory.
    `source` names where `lists` came from (manifest.json)."""
    makers = {"langid": langid_examples, "same_language": same_language_examples}
    sizes = {"train": train, "validation": evaluation, "test": evaluation}
    root, dirs = Path(outdir), {}
    for t, task in enumerate(TASKS):
        dirs[task] = root / task
        dirs[task].mkdir(parents=True, exist_ok=True)
        for s, split in enumerate(SPLITS):
            rng = np.random.default_rng([seed, t, s])
            rows = makers[task](lists, sizes[split], rng)
            text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            (dirs[task] / f"{split}.jsonl").write_text(text, encoding="utf-8")
    manifest = {"languages": list(lists), "labels": {"langid": "index in languages",
                "same_language": "1 = same language"}, "seed": seed, "sizes": sizes,
                "top_words": max(len(w) for w, _ in lists.values()),
                "words_per_sentence": [MIN_WORDS, MAX_WORDS], "source": source}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return dirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scaling.data.sources.demo_tasks",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=4000, help="training examples per task")
    parser.add_argument("--eval", type=int, default=800,
                        help="validation and test examples per task, each")
    parser.add_argument("--top", type=int, default=TOP_WORDS, help="words per language")
    args = parser.parse_args(argv)
    try:
        if min(args.train, args.eval, args.top) < 1:
            raise UserError("--train, --eval and --top must be positive")
        lists = word_lists(LANGUAGES, args.top)
        dirs = build_tasks(args.outdir, lists, seed=args.seed, train=args.train,
                           evaluation=args.eval, source=f"wordfreq {version('wordfreq')}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for task, path in dirs.items():
        print(f"{task}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
