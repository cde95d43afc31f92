"""Named TFDS datasets (`--data tfds:NAME[/CONFIG]`), read as array_record data sources.

The data_dir is `data.tfds_data_dir`, else `$TFDS_DATA_DIR`, else TFDS's default. A dataset that
is not prepared there is prepared as array_record (downloads need network; many TFDS builders
also need TensorFlow to prepare, though reading never does: prepare on a machine that has it
with `tfds build NAME --file_format=array_record` and point the data_dir at the result).
A builder that cannot even be imported without TensorFlow (glue, c4, wmt14_translate) is
read from its prepared files alone (`builder_from_files`).

Splits: train is "train"; validation is "validation", else "test", else the last
`HOLDOUT_PERCENT`% of train (train then keeps the rest). A dataset that reports no splits
(as under `tfds.testing.mock_data`) is taken to have train and validation.
"""

from __future__ import annotations

import logging
import os
import warnings

import tensorflow_datasets as tfds
from tensorflow_datasets.core import read_only_builder

from scaling.data import cache
from scaling.data.sources.corpus import Corpus
from scaling.errors import DataError

HOLDOUT_PERCENT = 3


def tfds_data_dir(data) -> str | None:
    """The TFDS data_dir for `data` (a DataConfig); None = TFDS's default."""
    return data.tfds_data_dir or os.environ.get("TFDS_DATA_DIR") or None


def choose_splits(available: set[str]) -> dict[str, str]:
    """TFDS split names (slices allowed) for our "train" and "validation"."""
    if not available:
        return {"train": "train", "validation": "validation"}
    if "train" not in available:
        raise DataError(f"dataset has no train split (splits: {', '.join(sorted(available))})")
    for name in ("validation", "test"):
        if name in available:
            return {"train": "train", "validation": name}
    keep = 100 - HOLDOUT_PERCENT
    return {"train": f"train[:{keep}%]", "validation": f"train[{keep}%:]"}


def load_tfds_corpus(data, name: str) -> Corpus:
    """Open (preparing if needed) the TFDS dataset `name` ("tiny_shakespeare", "glue/sst2")."""
    spec = f"tfds:{name}"
    data_dir = tfds_data_dir(data)
    builder = _builder(spec, name, data_dir)
    if not _is_prepared(builder):
        _prepare(spec, name, builder)
    splits = choose_splits(set(builder.info.splits))
    try:  # what tfds.data_source(name, split=...) does, on the builder opened above
        sources = {ours: builder.as_data_source(split=theirs) for ours, theirs in splits.items()}
    except (ValueError, NotImplementedError, FileNotFoundError) as e:
        raise DataError(
            f"--data {spec!r}: cannot read it as array_record ({_first_line(e)}); prepare it "
            f"with `tfds build {name} --file_format=array_record`"
        ) from e
    sizes = {ours: len(source) for ours, source in sources.items()}
    key = "tfds-" + cache.fingerprint(name, str(builder.version), data_dir, splits, sizes)
    if data.max_documents:
        key += f"-max{data.max_documents}"
    return Corpus(spec=spec, key=key, splits=sources, text_field=data.text_field,
                  limit=data.max_documents)


def _builder(spec: str, name: str, data_dir: str | None):
    try:
        return tfds.builder(name, data_dir=data_dir, file_format="array_record")
    except tfds.core.registered.DatasetNotFoundError as e:
        # Some TFDS builders (glue, c4, wmt) import TensorFlow and so cannot even be named
        # here; a prepared copy is still readable from its files alone.
        try:
            return read_only_builder.builder_from_files(name, data_dir=data_dir)
        except Exception:  # any failure means: not prepared there either
            pass
        raise DataError(
            f"--data {spec!r}: TFDS cannot open it ({_first_line(e)}); if its builder needs "
            f"TensorFlow, prepare it elsewhere with `tfds build {name} --file_format="
            f"array_record` and set data.tfds_data_dir (or $TFDS_DATA_DIR)"
        ) from e


def _is_prepared(builder) -> bool:
    return builder.is_prepared()


class _Quieted(logging.Filter):
    """Holds back TFDS's warnings (download retries, ...) while preparing: a failure is then
    reported in one line that counts them and quotes the last."""

    def __init__(self):
        super().__init__()
        self.held: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:  # while preparing, only TFDS is at work
            self.held.append(record.getMessage().splitlines()[0][:160])
            return False
        return True


def _prepare(spec: str, name: str, builder) -> None:
    quiet = _Quieted()
    absl = logging.getLogger("absl")
    absl.addFilter(quiet)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TFDS's Python warnings: summarized on failure
            _download_and_prepare(spec, name, builder, quiet)
    finally:
        absl.removeFilter(quiet)


def _download_and_prepare(spec: str, name: str, builder, quiet) -> None:
    try:
        tfds.disable_progress_bar()
        builder.download_and_prepare()
    except ModuleNotFoundError as e:
        raise DataError(
            f"--data {spec!r} is not prepared in {builder.data_dir} and preparing it needs "
            f"{e.name}, which is not installed; run `tfds build {name} --file_format="
            f"array_record` where it is and set data.tfds_data_dir (or $TFDS_DATA_DIR)"
        ) from e
    except Exception as e:  # downloads fail in many ways (no network, checksums, quotas)
        held = (f"; TFDS warned {len(quiet.held)} time(s), last: {quiet.held[-1]!r}"
                if quiet.held else "")
        raise DataError(
            f"--data {spec!r}: preparing the dataset failed ({_first_line(e)}{held}); without "
            f"network, prepare it elsewhere and set data.tfds_data_dir (or $TFDS_DATA_DIR)"
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
