"""`scaling eval --tasks bleu[:PATH.tsv]`: BLEU and chrF (scaling/bleu.py) of a translation
run on its test split or on a TSV file."""

from __future__ import annotations

from scaling import storage
from scaling.bleu import corpus_pairs, corpus_scores
from scaling.errors import UserError
from scaling.jsonl import append_rows


def tsv_pairs(path: str) -> list[tuple[str, str]]:
    """(source, reference) pairs of a `source TAB reference` file."""
    from scaling.eval.translate import read_lines

    pairs = []
    for i, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise UserError(f"{path}:{i}: expected `source TAB reference`, found {len(parts)} "
                            f"tab-separated fields")
        pairs.append((parts[0].strip(), parts[1].strip()))
    if not pairs:
        raise UserError(f"{path}: no sentence pairs")
    return pairs


def bleu_command(workdir: str, tasks: list[str], beam: int, alpha: float, limit: int,
                 split: str = "test") -> list[dict]:
    """Decode each task's sources, print BLEU/chrF with signatures, append to eval.jsonl."""
    from scaling.data.api import seq2seq_fields_of
    from scaling.eval.translate import load_translator

    translator, params, config, corpus, meta = load_translator(workdir)
    results = []
    for task in tasks:
        path = task.partition(":")[2]
        if path:
            pairs = tsv_pairs(path)[:limit or None]
        else:
            pairs = corpus_pairs(corpus, seq2seq_fields_of(config), split, limit)
        hyps = translator.translate(params, translator.encode([s for s, _ in pairs]),
                                    beam=beam, alpha=alpha)
        r = {"task": task, "step": meta.get("step"), "beam": beam, "alpha": alpha,
             **corpus_scores(hyps, [t for _, t in pairs])}
        results.append(r)
        print(f"{task:<24} BLEU {r['bleu']:.2f}  chrF {r['chrf']:.2f}  (n={r['n']}, beam "
              f"{beam}, alpha {alpha})\n  {r['bleu_signature']}\n  {r['chrf_signature']}")
    append_rows(storage.join(workdir, "eval.jsonl"), results, UserError)
    return results
