"""Fine-tuning (`scaling finetune`): task files, row encodings, task metrics, evaluation.
The objectives themselves are registered in scaling/families/ (bert_task, gpt_task)."""
