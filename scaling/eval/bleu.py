"""BLEU and chrF with sacreBLEU (Post 2018): corpus-level scores and their signatures, so
figures are comparable across papers and runs; the evaluator that decodes a translation run's
sources and scores them, in training (`train.eval_bleu=N`: greedy, the first N validation
pairs) and in `scaling eval --tasks bleu[:PATH.tsv]` (the test split, or a TSV file)."""

from __future__ import annotations

from scaling import storage
from scaling.errors import UserError
from scaling.jsonl import append_rows


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


class Bleu:
    """The evaluator: parameters in, one row per named set of pairs out (`task`, `beam`,
    `alpha`, BLEU, chrF, their signatures, `n`). `sets` is [(name, [(source, reference)])];
    `translator` a scaling.eval.translate.Translator of the run."""

    def __init__(self, translator, sets: list[tuple[str, list]], beam: int, alpha: float):
        self.translator, self.sets, self.beam, self.alpha = translator, sets, beam, alpha

    def __call__(self, params) -> list[dict]:
        rows = []
        for name, pairs in self.sets:
            hyps = self.translator.translate(
                params, self.translator.encode([s for s, _ in pairs]), beam=self.beam,
                alpha=self.alpha)
            rows.append({"task": name, "beam": self.beam, "alpha": self.alpha,
                         **corpus_scores(hyps, [r for _, r in pairs])})
        return rows


def in_training(config):
    """With train.eval_bleu=N: greedy BLEU/chrF of the first N validation pairs at each
    evaluation, logged as eval_bleu and eval_chrf (a run whose family does not translate
    has none)."""
    if not config.train.eval_bleu:
        return None
    from scaling.train.hooks import Evaluation

    def start(run):
        if run.family.translator is None:
            return None
        built = {}

        def evaluate(state, step) -> dict:
            if not built:  # the first evaluation compiles the search
                from scaling.eval.translate import Translator

                translator = Translator(run.resolved, run.mesh, run.data.tokenizer,
                                        run.shardings.params)
                pairs = corpus_pairs(run.data.corpus, run.data.fields, "validation",
                                     run.config.train.eval_bleu)
                built["bleu"] = Bleu(translator, [("validation", pairs)], beam=1, alpha=0.0)
            (row,) = built["bleu"](state.params)
            return {"eval_bleu": row["bleu"], "eval_chrf": row["chrf"]}

        return evaluate

    return Evaluation("bleu", start)


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
        (row,) = Bleu(translator, [(task, pairs)], beam, alpha)(params)
        r = {"task": task, "step": meta.get("step"), **row}
        results.append(r)
        print(f"{task:<24} BLEU {r['bleu']:.2f}  chrF {r['chrf']:.2f}  (n={r['n']}, beam "
              f"{beam}, alpha {alpha})\n  {r['bleu_signature']}\n  {r['chrf_signature']}")
    append_rows(storage.join(workdir, "eval.jsonl"), results, UserError)
    return results
