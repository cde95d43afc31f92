"""The Apache Beam pipeline that builds a token store, and the runners it runs on.

    units ─ Reshuffle ─ unit_candidates ─ CombineGlobally(merge) ─ train tokenizer ─┐ (side
    groups ─ Reshuffle ─ build_group(tokenizer) ──────────────────────────────────────┘ input)

The first branch exists only when the tokenizer is trained (`data.tokenizer=sentencepiece`
and the store has none yet). Locally the pipeline runs on Beam's DirectRunner, in this
process for one worker and in `--workers N` processes otherwise (multi_processing mode:
no binary downloads, unlike the Prism runner); `--runner dataflow|flink|spark` with
`--beam-option KEY=VALUE` runs the same pipeline on a cluster (docs/data.md). Workers that
hit bad data raise a DataError; its one line is carried back to the command line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys

from scaling.errors import DataError

RUNNERS = {"direct": "DirectRunner", "dataflow": "DataflowRunner", "flink": "FlinkRunner",
           "spark": "SparkRunner"}
_MARK = "\x1escaling-data-error\x1e"
ORIGINAL_STDERR: int | None = None  # the launcher's stderr while workers' is held back


def options(runner: str, workers: int, beam_options: list[str]):
    """Beam PipelineOptions for `runner` with `workers` local processes (direct runner)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # importing Beam warns about optional GCP clients
    try:
        from apache_beam.options.pipeline_options import PipelineOptions
    finally:
        root.setLevel(level)

    if runner not in RUNNERS:
        raise DataError(f"--runner {runner!r}: choose one of {', '.join(RUNNERS)}")
    flags = [f"--runner={RUNNERS[runner]}", "--default_sdk_harness_log_level=ERROR"]
    if runner == "direct":
        mode = "in_memory" if workers == 1 else "multi_processing"
        flags += [f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"]
    for item in beam_options:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise DataError(f"--beam-option {item!r}: expected KEY=VALUE, e.g. "
                            f"--beam-option project=my-project")
        flags.append(f"--{key.strip().lstrip('-')}={value}")
    return PipelineOptions(flags)


class reraise_data_errors:  # noqa: N801 - used as a function wrapper
    """`fn`, with a DataError's message marked so the launcher can find it in the runner's
    error (a worker's exception reaches us as text inside another exception)."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        try:
            return self.fn(*args, **kwargs)
        except DataError as e:
            raise DataError(f"{_MARK}{e}{_MARK}") from None


def data_error_in(e: BaseException) -> str | None:
    """The marked DataError message inside `e`'s text, if a worker raised one."""
    found = re.search(f"{_MARK}(.*?){_MARK}", f"{e!s}{e!r}", re.S)
    return found.group(1) if found else None


def run(store_settings, groups, units, tokenizer_ref, train_tokenizer, opts,
        subprocesses: bool) -> None:
    """Run the pipeline: `groups` to build; `train_tokenizer(sample) -> TokenizerRef` when the
    tokenizer must be trained first (then `tokenizer_ref` is None). `subprocesses`: the
    runner starts local worker processes (their stderr is held back)."""
    import apache_beam as beam

    from scaling.data.store import sample as sampling
    from scaling.data.store.shards import build_group

    s = store_settings
    with _quiet_beam(subprocesses), beam.Pipeline(options=opts) as p:
        if tokenizer_ref is None:
            budget = s.sample_chars
            drawn = (p | "units" >> beam.Create(list(enumerate(units)))
                     | "spread units" >> beam.Reshuffle()
                     | "sample" >> beam.Map(reraise_data_errors(sampling.unit_candidates),
                                            s.text_field, s.tfds_data_dir, budget)
                     | "merge" >> beam.CombineGlobally(_Merge(budget)))
            tok = beam.pvalue.AsSingleton(
                drawn | "train tokenizer" >> beam.Map(reraise_data_errors(train_tokenizer)))
        else:
            tok = tokenizer_ref
        _ = (p | "groups" >> beam.Create(groups)
             | "spread groups" >> beam.Reshuffle()
             | "tokenize" >> beam.Map(reraise_data_errors(build_group), tok, s.shard_settings))


class _Merge:
    """CombineFn (duck-typed; made a real one lazily) merging bounded samples."""

    def __new__(cls, budget: int):
        import apache_beam as beam

        from scaling.data.store import sample as sampling

        class Merge(beam.CombineFn):
            def create_accumulator(self):
                return []

            def add_input(self, acc, candidates):
                return sampling.merge([acc, candidates], budget)

            def merge_accumulators(self, accs):
                return sampling.merge(list(accs), budget)

            def extract_output(self, acc):
                return acc

        return Merge()


@contextlib.contextmanager
def _quiet_beam(subprocesses: bool):
    """Beam's INFO/WARNING logging held back (its workers' too: their stderr goes to a
    temporary file, shown only if the pipeline fails without a DataError)."""
    import tempfile

    global ORIGINAL_STDERR

    loggers = [logging.getLogger(), logging.getLogger("apache_beam")]
    levels = [lg.level for lg in loggers]
    loggers[0].setLevel(logging.ERROR)
    # CRITICAL: the in-process runner logs a worker's exception at ERROR (with a traceback)
    # before raising it; the raised exception is what reaches the user
    loggers[1].setLevel(logging.CRITICAL)
    log = tempfile.TemporaryFile(mode="w+b")
    saved = None
    if subprocesses:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(log.fileno(), 2)
            ORIGINAL_STDERR = saved
    try:
        yield
    except BaseException as e:
        if saved is not None:
            os.dup2(saved, 2)
            saved = None
        if data_error_in(e) is None and not isinstance(e, KeyboardInterrupt):
            log.seek(0)
            tail = log.read()[-4000:].decode("utf-8", "replace")
            if tail.strip():
                print(tail, file=sys.stderr)
        raise
    finally:
        ORIGINAL_STDERR = None
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
        log.close()
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
