"""BLEU and chrF with sacreBLEU (Post 2018): corpus-level scores and their signatures, so
figures are comparable across papers and runs."""

from __future__ import annotations

from scaling.errors import UserError


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict:
    """sacreBLEU corpus BLEU (13a tokenization, exp smoothing) and chrF, with signatures."""
    import sacrebleu

    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    return {"bleu": b.score, "chrf": c.score, "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature()), "n": len(hypotheses)}


def corpus_pairs(corpus, fields: tuple[str, str], split: str, limit: int = 0):
    """(source, reference) of a built parallel corpus's split."""
    if split not in corpus.splits:
        raise UserError(f"{corpus.spec} has no {split!r} split to score; give a test set as "
                        f"--tasks bleu:PATH.tsv")
    pairs = []
    for i, record in enumerate(corpus.records(split)):
        if limit and i >= limit:
            break
        pairs.append(tuple(corpus.field(record, f, f"{split} record {i}") for f in fields))
    return pairs
