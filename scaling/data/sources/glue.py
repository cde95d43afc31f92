"""GLUE (Wang et al. 2019) from TFDS (`--task tfds:glue/CONFIG`), mapped to the task fields.

TFDS's glue builder needs TensorFlow to prepare; prepare it where TensorFlow is with
`tfds build glue/sst2 --file_format=array_record` and point data.tfds_data_dir (or
$TFDS_DATA_DIR) at the result. Test-split labels are -1 in GLUE (unlabeled).
"""

from __future__ import annotations

from scaling.errors import DataError

# config -> (text field, pair field or None, task type, dev metric as GLUE reports it)
GLUE = {
    "cola": ("sentence", None, "classification", "mcc"),
    "sst2": ("sentence", None, "classification", "accuracy"),
    "mrpc": ("sentence1", "sentence2", "classification", "f1"),
    "qqp": ("question1", "question2", "classification", "f1"),
    "stsb": ("sentence1", "sentence2", "regression", "pearson"),
    "mnli": ("premise", "hypothesis", "classification", "accuracy"),
    "mnli_matched": ("premise", "hypothesis", "classification", "accuracy"),
    "mnli_mismatched": ("premise", "hypothesis", "classification", "accuracy"),
    "qnli": ("question", "sentence", "classification", "accuracy"),
    "rte": ("sentence1", "sentence2", "classification", "accuracy"),
    "wnli": ("sentence1", "sentence2", "classification", "accuracy"),
    "ax": ("premise", "hypothesis", "classification", "mcc"),
}


def glue_config(spec: str) -> str:
    """`tfds:glue/sst2` -> "sst2"; DataError for another dataset or an unknown config."""
    name = spec.split(":", 1)[1]
    dataset, _, config = name.partition("/")
    if dataset != "glue" or config not in GLUE:
        raise DataError(f"--task {spec}: TFDS tasks are the GLUE configs tfds:glue/CONFIG "
                        f"with CONFIG one of {', '.join(GLUE)}; other data goes in a task "
                        f"directory (train.jsonl, validation.jsonl)")
    return config


def glue_record(config: str, record: dict) -> dict:
    """A GLUE record in the task fields: text, text_pair (pair tasks), label (None = -1)."""
    text, pair, _, _ = GLUE[config]

    def s(v):
        return v.decode("utf-8") if isinstance(v, bytes) else str(v)

    out = {"text": s(record[text])}
    if pair:
        out["text_pair"] = s(record[pair])
    label = record.get("label")
    label = None if label is None else float(label)
    out["label"] = None if label == -1 else label
    return out


def glue_splits(available: set[str]) -> dict[str, str]:
    """Our split -> the GLUE split (MNLI's dev and test are the matched ones)."""
    out = {}
    for ours in ("train", "validation", "test"):
        for theirs in (ours, f"{ours}_matched"):
            if theirs in available:
                out[ours] = theirs
                break
    return out


def read_glue(spec: str, data) -> tuple[dict, dict]:
    """(split -> [(index, record in task fields)], split -> name) of a prepared GLUE config;
    `data` is the run's DataConfig (tfds_data_dir)."""
    from scaling.data.sources.tfds import _builder, tfds_data_dir

    config = glue_config(spec)
    name = spec.split(":", 1)[1]
    builder = _builder(spec, name, tfds_data_dir(data))
    if not builder.is_prepared():
        raise DataError(f"--task {spec}: not prepared in {builder.data_dir}; run `tfds build "
                        f"{name} --file_format=array_record` where TensorFlow is installed and "
                        f"set data.tfds_data_dir (or $TFDS_DATA_DIR)")
    splits = glue_splits(set(builder.info.splits) or {"train", "validation"})
    out = {}
    for ours, theirs in splits.items():
        source = builder.as_data_source(split=theirs)
        out[ours] = [(i + 1, glue_record(config, source[i])) for i in range(len(source))]
    return out, {ours: f"{spec}[{theirs}] record" for ours, theirs in splits.items()}
