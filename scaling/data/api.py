"""Entry points that turn a run `Config` into data objects."""

from __future__ import annotations

from pathlib import Path

from scaling.data import cache
from scaling.data.corpora import Corpus, load_corpus
from scaling.data.loader import LMData
from scaling.data.mlm import MLMData
from scaling.data.packing import cached_stream
from scaling.data.tokenizer import Tokenizer, load_tokenizer


def open_corpus(config) -> tuple[Corpus, Tokenizer, Path]:
    """The corpus of `config.data.source` and its tokenizer, building either once."""
    d = config.data
    root = cache.cache_root(d.cache_dir)
    corpus = load_corpus(d, root)
    tokenizer = load_tokenizer(
        d.tokenizer, d.tokenizer_type, d.vocab_size or config.model.vocab_size, corpus, root,
        config.model.vocab_size,
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
                  process_count: int | None = None) -> MLMData:
    """Packed, masked BERT data for `config` (see scaling/data/mlm.py); same interface."""
    return _packed(MLMData, config, process_index, process_count)


def _processes(process_index, process_count) -> tuple[int, int]:
    if process_index is None or process_count is None:
        import jax

        return jax.process_index(), jax.process_count()
    return process_index, process_count


def _packed(cls, config, process_index, process_count):
    process_index, process_count = _processes(process_index, process_count)
    corpus, tokenizer, root = open_corpus(config)
    return cls(
        tokenizer=tokenizer,
        train=cached_stream(corpus, "train", tokenizer, root),
        validation=cached_stream(corpus, "validation", tokenizer, root),
        seq_len=config.seq_len, global_batch=config.train.global_batch,
        eval_batches=config.train.eval_batches, seed=config.data.seed,
        process_index=process_index, process_count=process_count,
        dataset_key=f"{corpus.key}/{tokenizer.hash[:16]}",
    )
