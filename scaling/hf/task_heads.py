"""Fine-tuned runs (`scaling finetune`) for `convert --to-hf` (commands that need a
language-model head refuse them: scaling/checkpoint/load.refuse_finetuned).

A fine-tuned run's parameters are {"backbone": the pretrained model's tree, "head": the task
head} (scaling/models/heads.py). A BERT run exports to the HF class that holds the same head
on the pooled [CLS] state (Devlin et al. 2019 §4): BertForSequenceClassification for
classification (K labels) and regression (one output), BertForMultipleChoice (one score per
choice). A GPT-1-style task head on the extract token has no HF class: the backbone is
exported alone, and one line says what was left out.
"""

from __future__ import annotations

BERT_CLASSES = {
    "classification": "BertForSequenceClassification",
    "regression": "BertForSequenceClassification",
    "multiple_choice": "BertForMultipleChoice",
}


def task_export(config, arch, params) -> tuple[dict, dict, str, str | None]:
    """(HF tensors {name: fn(ours)} over the backbone, config.json extras, the HF class name,
    a note of what was left out or None) of a fine-tuned run's `params`."""
    import numpy as np

    head = {k: np.asarray(v, np.float32) for k, v in params["head"].items()}  # [D, K], [K]
    tensors = arch.export(config.model)
    ft = config.finetune
    if arch.model_type != "bert":  # HF holds a task head on BERT's pooled [CLS] only
        note = (
            f"the {ft.task_type} head ({head['kernel'].shape[1]} outputs on the extract "
            f"token) is left out: HuggingFace has no class for GPT-1's task head; the "
            f"export is the backbone ({arch.name})"
        )
        return tensors, {}, arch.name, note
    name = BERT_CLASSES[ft.task_type]
    tensors = {k: fn for k, fn in tensors.items() if not k.startswith("cls.")}  # MLM/NSP
    tensors["classifier.weight"] = lambda _o: head["kernel"].T  # [K, D]
    tensors["classifier.bias"] = lambda _o: head["bias"]  # [K]
    K = head["kernel"].shape[1]
    extra = {"architectures": [name]}
    if ft.task_type != "multiple_choice":  # BertForMultipleChoice scores each choice: 1 output
        extra["num_labels"] = K
    if ft.task_type == "regression":
        extra["problem_type"] = "regression"
    elif ft.task_type == "classification":
        extra["problem_type"] = "single_label_classification"
        extra["id2label"] = {str(i): f"LABEL_{i}" for i in range(K)}
        extra["label2id"] = {f"LABEL_{i}": i for i in range(K)}
    return tensors, extra, name, None
