"""Entry points that turn a run `Config` into data objects."""

from __future__ import annotations

from pathlib import Path

from scaling.data import cache
from scaling.data.classify import ClassificationData
from scaling.data.corpora import load_corpus
from scaling.data.corpus import Corpus
from scaling.data.loader import LMData
from scaling.data.mlm import MLMData
from scaling.data.nsp import NSPData
from scaling.data.packing import cached_stream
from scaling.data.sentences import cached_sentences
from scaling.data.seq2seq import Seq2SeqData, seq2seq_fields
from scaling.data.tokenizer import Tokenizer, load_tokenizer
from scaling.errors import DataError


def open_corpus(config, fields: tuple[str, ...] = ()) -> tuple[Corpus, Tokenizer, Path]:
    """The corpus of `config.data.source` and its tokenizer (trained, if it is trained, on
    `fields`, default the text field), building either once. Two fields mean a parallel
    corpus of (source, target) records."""
    d = config.data
    if d.spec.kind == "mix":
        raise DataError(f"--data {d.source!r}: a mixture feeds packed-document objectives "
                        f"(causal_lm, masked_lm) only; give this objective one source")
    root = cache.cache_root(d.cache_dir)
    corpus = load_corpus(d, root, parallel=len(fields) == 2)
    tokenizer = load_tokenizer(
        d.tokenizer, d.tokenizer_type, d.vocab_size or config.model.vocab_size, corpus, root,
        config.model.vocab_size, fields,
    )
    return corpus, tokenizer, root


def load_lm_data(config, *, process_index: int | None = None,
                 process_count: int | None = None) -> LMData:
    """Packed causal-LM data for `config` (a scaling.config.Config); this process's shard.

    Builds, once, whatever the cache lacks: the TFDS dataset, the tokenizer, the token streams.
    process_index/process_count default to jax.process_index()/jax.process_count().
    """
    return _packed(LMData, config, process_index, process_count)


def load_mlm_data(config, *, process_index: int | None = None,
                  process_count: int | None = None) -> MLMData | NSPData:
    """Masked BERT data for `config`; same interface. With data.nsp: sentence pairs with
    next-sentence labels (scaling/data/nsp.py); without: packed documents (mlm.py)."""
    if not config.data.nsp:
        return _packed(MLMData, config, process_index, process_count)
    corpus, tokenizer, root = open_corpus(config)
    return NSPData(
        train=cached_sentences(corpus, "train", tokenizer, root),
        validation=cached_sentences(corpus, "validation", tokenizer, root),
        seq_len=config.seq_len, **_common(config, corpus, tokenizer, process_index, process_count),
    )


def _processes(process_index, process_count) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax

        return jax.process_index(), jax.process_count()
    return process_index, process_count


def _packed(cls, config, process_index, process_count):
    if config.data.spec.kind == "mix":
        from scaling.data.mixture import load_mixture

        return load_mixture(cls, config, *_processes(process_index, process_count))
    corpus, tokenizer, root = open_corpus(config)
    return cls(
        train=cached_stream(corpus, "train", tokenizer, root),
        validation=cached_stream(corpus, "validation", tokenizer, root),
        seq_len=config.seq_len, **_common(config, corpus, tokenizer, process_index, process_count),
    )


def load_seq2seq_data(config, *, process_index: int | None = None,
                      process_count: int | None = None) -> Seq2SeqData:
    """Encoder-decoder batches over (source, target) records (see scaling/data/seq2seq.py);
    the tokenizer, if trained, is one vocabulary shared by both sides."""
    fields = seq2seq_fields_of(config)
    corpus, tokenizer, _ = open_corpus(config, fields)
    return Seq2SeqData(corpus=corpus, input_field=fields[0], target_field=fields[1],
                       seq_len=config.seq_len, **_common(config, corpus, tokenizer,
                                                         process_index, process_count))


def seq2seq_fields_of(config) -> tuple[str, str]:
    """The (source, target) record fields of `config`'s parallel data."""
    d = config.data
    return seq2seq_fields(d.spec, d.input_field, d.target_field)


def load_classification_data(config, *, process_index: int | None = None,
                             process_count: int | None = None) -> ClassificationData:
    """[CLS] text [SEP] batches with `labels` (see scaling/data/classify.py): the text is
    data.text_field, the label data.label_field."""
    corpus, tokenizer, _ = open_corpus(config)
    return ClassificationData(corpus=corpus, label_field=config.data.label_field,
                              seq_len=config.seq_len, **_common(config, corpus, tokenizer,
                                                                process_index, process_count))


def _common(config, corpus, tokenizer, process_index, process_count) -> dict:
    process_index, process_count = _processes(process_index, process_count)
    return dict(tokenizer=tokenizer, global_batch=config.train.global_batch,
                eval_batches=config.train.eval_batches, seed=config.data.seed,
                process_index=process_index, process_count=process_count,
                dataset_key=f"{corpus.key}/{tokenizer.hash[:16]}")
