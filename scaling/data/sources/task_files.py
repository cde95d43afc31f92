"""Task data for fine-tuning: read, infer the task type, check (no JAX here).

`--task DIR`: DIR holds `train` and `validation` (optional `test`) files, each `.jsonl` (one
JSON object a line), `.csv` (a header row) or `.tsv` (a header row, no quoting). Fields
(names set by finetune.text_field / pair_field / label_field / choices_field):

    text       the sentence (or the context of a multiple-choice example)
    text_pair  optional: the second sentence of a pair task
    label      an integer class >= 0, a float for regression, the index of the right choice
    choices    multiple choice: a list of strings (in CSV/TSV a JSON array in the cell)

`--task tfds:glue/CONFIG`: a GLUE config prepared as array_record (scaling/data/sources/glue.py),
mapped to the same fields.

The task type is `multiple_choice` when records have choices, `regression` when a train
label is not a whole number, else `classification`; finetune.task_type overrides it.
Every bad record is reported as `FILE line N: ...` (DataError: one line, exit 2).
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass

from scaling.bounds import MAX_CHOICES, MAX_CLASSES  # docs/reliability.md, "Bounds"
from scaling.errors import DataError

TASK_TYPES = ("classification", "regression", "multiple_choice")
SPLITS = ("train", "validation", "test")
FORMATS = ("jsonl", "csv", "tsv")


@dataclass(frozen=True)
class Example:
    """One task example; `where` is `FILE line N` for messages."""

    text: str
    pair: str | None
    label: float | None  # None: unlabeled (a test split)
    choices: tuple[str, ...] | None
    where: str


@dataclass(frozen=True)
class Task:
    """The examples of each split and what was inferred from them."""

    spec: str
    splits: dict  # split -> list[Example]
    task_type: str
    num_labels: int  # classes; 1 for regression; choices for multiple choice
    num_choices: int  # 0 unless multiple choice
    has_pair: bool
    files: dict  # split -> file (or tfds split) name

    @property
    def num_outputs(self) -> int:
        """Outputs of the head: classes, or 1 (regression, one score per choice)."""
        return self.num_labels if self.task_type == "classification" else 1


def split_file(directory: str, split: str, required: bool = True) -> str | None:
    """The one file of `split` in `directory` (train.jsonl, train.csv or train.tsv)."""
    found = [os.path.join(directory, f"{split}.{ext}") for ext in FORMATS
             if os.path.isfile(os.path.join(directory, f"{split}.{ext}"))]
    if len(found) > 1:
        raise DataError(f"--task {directory}: both {' and '.join(found)}; keep one {split} file")
    if not found and required:
        raise DataError(f"--task {directory}: no {split}.jsonl, {split}.csv or {split}.tsv "
                        f"there (a task directory holds train and validation files)")
    return found[0] if found else None


def read_records(path: str) -> list[tuple[int, dict]]:
    """(line number, record) of each example of a .jsonl/.csv/.tsv file."""
    ext = path.rsplit(".", 1)[-1]
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: a BOM is no text
            if ext == "jsonl":
                return [(i, _json_record(line, path, i)) for i, line in enumerate(f, 1)
                        if line.strip()]
            reader = (csv.DictReader(f) if ext == "csv" else
                      csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
            return [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{path}: not a readable {ext.upper()} file ({e})") from None


def _json_record(line: str, path: str, n: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{path} line {n}: not JSON ({e.msg}); one object a line") from None
    except ValueError as e:  # an integer of more than 4300 digits
        raise DataError(f"{path} line {n}: unreadable JSON ({e})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path} line {n}: expected a JSON object, found "
                        f"{type(record).__name__}")
    return record


@dataclass(frozen=True)
class Fields:
    text: str = "text"
    pair: str = "text_pair"
    label: str = "label"
    choices: str = "choices"


def fields_of(ft) -> Fields:
    """The field names of a FinetuneConfig."""
    return Fields(ft.text_field, ft.pair_field, ft.label_field, ft.choices_field)


def _need(record: dict, name: str, where: str, what: str):
    if name in record and record[name] is None:
        raise DataError(f"{where}: field {name!r} is null ({what}); give it a value")
    if name not in record:
        raise DataError(f"{where}: no field {name!r} ({what}; fields there: "
                        f"{', '.join(sorted(map(str, record)))}); fix the file or set "
                        f"finetune.*_field")
    return record[name]


def _label(value, where: str) -> float:
    try:
        label = float(value)
    except OverflowError:
        raise DataError(f"{where}: label {str(value)[:20]}... is far too large (class ids "
                        f"are below {MAX_CLASSES})") from None
    except (TypeError, ValueError):
        raise DataError(f"{where}: label {value!r} is not a number (a class id >= 0 or a "
                        f"float for regression)") from None
    if not math.isfinite(label):
        raise DataError(f"{where}: label {value!r} is not a finite number")
    return label


def _choices(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise DataError(f"{where}: choices must be a list of strings (in CSV/TSV a JSON "
                        f"array in the cell)")
    return tuple(value)


def to_example(record: dict, where: str, f: Fields, *, pair: bool, choices: bool,
               labeled: bool) -> Example:
    """The Example of one record; `pair`/`choices` say what the task has (from train)."""
    text = str(_need(record, f.text, where, "the text"))
    text_pair = str(_need(record, f.pair, where, "a sentence-pair task")) if pair else None
    opts = _choices(_need(record, f.choices, where, "a multiple-choice task"), where) \
        if choices else None
    label = None
    if labeled or (f.label in record and record[f.label] not in (None, "", -1, "-1")):
        label = _label(_need(record, f.label, where, "the label"), where)
    return Example(text, text_pair, label, opts, where)


def infer_type(train: list[Example], choices: bool) -> str:
    if choices:
        return "multiple_choice"
    whole = all(float(e.label).is_integer() for e in train)
    return "classification" if whole else "regression"


def _raw_splits(ft, data) -> tuple[dict, dict, Fields]:
    """split -> [(line, record)], split -> file name, and the field names to read."""
    if ft.task.startswith("tfds:"):
        from scaling.data.sources.glue import read_glue

        raw, files = read_glue(ft.task, data)
        return raw, files, Fields()
    if not os.path.isdir(ft.task):
        raise DataError(f"--task {ft.task}: not a directory (expected one holding "
                        f"train.jsonl and validation.jsonl, or tfds:glue/CONFIG)")
    files = {s: split_file(ft.task, s, required=s != "test") for s in SPLITS}
    files = {s: p for s, p in files.items() if p}
    return {s: read_records(p) for s, p in files.items()}, {
        s: f"{p} line" for s, p in files.items()}, fields_of(ft)


def load_task(ft, data=None) -> Task:
    """Read, infer and check the task of a FinetuneConfig (`data`: the DataConfig, for
    tfds_data_dir). DataError naming the file and line of the first bad record."""
    raw, names, f = _raw_splits(ft, data)
    for split in ("train", "validation"):
        if not raw.get(split):
            raise DataError(f"--task {ft.task}: the {split} split has no examples")
    has_choices = ft.task_type == "multiple_choice" or (
        not ft.task_type and _layout(raw, names, f.choices, "choices (multiple choice)"))
    has_pair = not has_choices and _layout(raw, names, f.pair, "a second sentence (pairs)")
    splits = {}
    for split, records in raw.items():
        splits[split] = [to_example(r, f"{names[split]} {n}", f, pair=has_pair,
                                    choices=has_choices, labeled=split != "test")
                         for n, r in records]
    task_type = ft.task_type or infer_type(splits["train"], has_choices)
    if task_type not in TASK_TYPES:
        raise DataError(f"finetune.task_type={task_type!r}: expected one of "
                        f"{', '.join(TASK_TYPES)}")
    num_labels, num_choices = _check_labels(splits, task_type, ft)
    return Task(ft.task, splits, task_type, num_labels, num_choices, has_pair,
                {s: n.rsplit(" ", 1)[0] for s, n in names.items()})


def _layout(raw: dict, names: dict, field: str, what: str) -> bool:
    """Whether the task's records have `field`, decided from every record of every split; a
    mix is refused naming the first record that differs from the first train record."""
    first = field in raw["train"][0][1]
    for split, records in raw.items():
        for n, record in records:
            if (field in record) != first:
                have = "has" if first else "lacks"
                raise DataError(f"{names[split]} {n}: {'no' if first else 'a'} field "
                                f"{field!r}, but {names['train']} {raw['train'][0][0]} {have} "
                                f"{what}; give every record the same fields")
    return first


def _check_labels(splits: dict, task_type: str, ft) -> tuple[int, int]:
    """(num_labels, num_choices), after checking every label against the train classes."""
    train = splits["train"]
    if task_type == "regression":
        return 1, 0
    if task_type == "multiple_choice":
        C = ft.num_choices or len(train[0].choices)
        if not 2 <= C <= MAX_CHOICES:
            raise DataError(f"{train[0].where}: {C} choice(s); a multiple-choice task needs "
                            f"2 to {MAX_CHOICES}")
        for split_examples in splits.values():
            for e in split_examples:
                if len(e.choices) != C:
                    raise DataError(f"{e.where}: {len(e.choices)} choices; every example of "
                                    f"the task needs {C} (the first train example's count)")
                if e.label is not None and not (e.label.is_integer() and 0 <= e.label < C):
                    raise DataError(f"{e.where}: label {e.label:g} is not a choice index "
                                    f"0..{C - 1}")
        return C, C
    for e in train:
        if not (e.label.is_integer() and e.label >= 0):
            raise DataError(f"{e.where}: label {e.label:g} is not a class id (an integer "
                            f">= 0); for regression set finetune.task_type=regression")
        if e.label >= MAX_CLASSES:
            raise DataError(f"{e.where}: label {e.label:g} is not below {MAX_CLASSES}, the "
                            f"bound on classes (a head of that many outputs)")
    seen = sorted({int(e.label) for e in train})
    if len(seen) < 2:
        raise DataError(f"{train[0].where.rsplit(' line', 1)[0]}: every train example has "
                        f"label {seen[0]} (one class); a classification task needs two or more")
    for split in ("validation", "test"):
        for e in splits.get(split, []):
            if e.label is not None and (not e.label.is_integer() or int(e.label) not in seen):
                raise DataError(f"{e.where}: label {e.label:g} is not one of the classes seen "
                                f"in training ({', '.join(map(str, seen))})")
    num_labels = ft.num_labels or seen[-1] + 1
    if num_labels > MAX_CLASSES:
        raise DataError(f"finetune.num_labels={num_labels}: at most {MAX_CLASSES} classes")
    if seen[-1] >= num_labels:
        raise DataError(f"finetune.num_labels={num_labels}: train labels go up to {seen[-1]}")
    return num_labels, 0
