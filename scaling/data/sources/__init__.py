"""Sources: where documents come from. units.py lists a pretraining corpus as units read in
parallel (files, byte ranges, parquet row groups, TFDS record ranges) and reads them;
splits.py decides train/validation by key; files.py globs and reads local files;
corpora.py + corpus.py + tfds.py + parallel.py + translation.py give record corpora (TFDS,
parallel text, the generated CLDR corpus) to objectives that tokenize on the fly;
task_files.py, glue.py and demo_tasks.py are the labelled tasks of fine-tuning."""

from scaling.data.sources.units import (
    PRETRAINING_KINDS,
    SINGLE_FILE_PARTS,
    Unit,
    cpu_count,
    describe,
    fingerprint,
    list_units,
    read_unit,
)

__all__ = ["PRETRAINING_KINDS", "SINGLE_FILE_PARTS", "Unit", "cpu_count", "describe",
           "fingerprint", "list_units", "read_unit"]
