"""Entry points that turn a run `Config` into data objects.

Pretraining objectives (causal LM, packed masked LM, NSP sentence pairs) read a token store
(scaling/data/store/): `--data store:STORE`, or any other pretraining source built into one
in the cache by the same Beam pipeline as `scaling prepare`. Seq2seq corpora (tsv:, cldr:,
parallel jsonl:) are small and tokenized on the fly (scaling/data/batches/seq2seq.py).
"""

from __future__ import annotations

from pathlib import Path

from scaling.data import cache
from scaling.data.batches.lm import LMData
from scaling.data.batches.mlm import MLMData
from scaling.data.batches.nsp import NSPData
from scaling.data.batches.seq2seq import Seq2SeqData, seq2seq_fields
from scaling.data.sources.corpora import load_corpus
from scaling.data.sources.corpus import Corpus
from scaling.data.tokenizers import Tokenizer, load_tokenizer
from scaling.errors import DataError


def open_corpus(config, fields: tuple[str, ...] = ()) -> tuple[Corpus, Tokenizer, Path]:
    """A parallel corpus of (source, target) records (`fields`) and its tokenizer (trained,
    if it is trained, on both fields: one shared vocabulary), building either once."""
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


def open_store(config, progress: bool = True):
    """The token store of `config.data` (built in the cache first unless it is a store:);
    process 0 of the job builds it, the others wait for it."""
    from scaling.data.store.for_run import run_store

    d = config.data
    return run_store(d, config.model.vocab_size, d.vocab_size, d.nsp, _builder_index(),
                     progress)


def _builder_index() -> int:
    """This process's index in the job (not its data share: with pipeline stages several
    processes read the same rows, and one of them must build)."""
    import jax

    return jax.process_index()


def data_tokenizer(config, progress: bool = True) -> Tokenizer:
    """The tokenizer `config.data` gives: its store's for pretraining sources, else the
    parallel corpus's."""
    from scaling.data.sources import PRETRAINING_KINDS

    kind = config.data.spec.kind
    if kind == "mix":
        return open_store(_first_part(config), progress).tokenizer
    if kind == "store" or kind in PRETRAINING_KINDS:
        return open_store(config, progress).tokenizer
    return open_corpus(config)[1]


def _first_part(config):
    import dataclasses

    first = str(config.data.spec.parts[0][1])
    return dataclasses.replace(config, data=dataclasses.replace(config.data, source=first))


def load_lm_data(config, *, process_index: int | None = None,
                 process_count: int | None = None, progress: bool = True) -> LMData:
    """Packed causal-LM data for `config` (a scaling.config.Config); this process's shard.

    Builds, once, whatever the cache lacks (the token store and its tokenizer).
    process_index/process_count default to jax.process_index()/jax.process_count();
    `progress`: print the store build's progress lines.
    """
    return _packed(LMData, config, process_index, process_count, progress)


def load_mlm_data(config, *, process_index: int | None = None,
                  process_count: int | None = None, progress: bool = True) -> MLMData | NSPData:
    """Masked BERT data for `config`; same interface. With data.nsp: sentence pairs with
    next-sentence labels (scaling/data/batches/nsp.py); without: packed documents (mlm.py)."""
    if not config.data.nsp:
        return _packed(MLMData, config, process_index, process_count, progress)
    if config.data.spec.kind == "mix":
        raise DataError(f"--data {config.data.source!r}: next-sentence pairs read one source; "
                        f"give one, or set data.nsp=false for packed documents")
    index, count = _processes(process_index, process_count)
    store = open_store(config, progress)
    return NSPData(train=store.train.sentence_stream(),
                   validation=store.validation.sentence_stream(), seq_len=config.seq_len,
                   **_common(config, store.key, store.tokenizer, index, count))


def _processes(process_index, process_count) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax

        return jax.process_index(), jax.process_count()
    return process_index, process_count


def _packed(cls, config, process_index, process_count, progress):
    index, count = _processes(process_index, process_count)
    if config.data.spec.kind == "mix":
        from scaling.data.mixture import load_mixture

        return load_mixture(cls, config, index, count, _builder_index(), progress)
    store = open_store(config, progress)
    return cls(train=store.train, validation=store.validation, seq_len=config.seq_len,
               **_common(config, store.key, store.tokenizer, index, count))


def load_seq2seq_data(config, *, process_index: int | None = None,
                      process_count: int | None = None, progress: bool = True) -> Seq2SeqData:
    """Encoder-decoder batches over (source, target) records (see
    scaling/data/batches/seq2seq.py); the tokenizer, if trained, is one vocabulary shared by
    both sides. (`progress` is unused: parallel corpora are small.)"""
    del progress
    fields = seq2seq_fields_of(config)
    corpus, tokenizer, _ = open_corpus(config, fields)
    index, count = _processes(process_index, process_count)
    return Seq2SeqData(corpus=corpus, input_field=fields[0], target_field=fields[1],
                       seq_len=config.seq_len,
                       **_common(config, corpus.key, tokenizer, index, count))


def seq2seq_fields_of(config) -> tuple[str, str]:
    """The (source, target) record fields of `config`'s parallel data."""
    d = config.data
    return seq2seq_fields(d.spec, d.input_field, d.target_field)


def _common(config, data_key: str, tokenizer, process_index: int, process_count: int) -> dict:
    return dict(tokenizer=tokenizer, global_batch=config.train.global_batch,
                eval_batches=config.train.eval_batches, seed=config.data.seed,
                process_index=process_index, process_count=process_count,
                dataset_key=f"{data_key}/{tokenizer.hash[:16]}")
