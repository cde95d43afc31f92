"""Batches: rows for each objective, a pure function of (seed, step). loader.py (what every
pipeline shares: grain index sampling, the iterator and its state), lm.py + packing.py
(causal LM), mlm.py (packed masked LM), nsp.py + sentences.py (BERT sentence pairs),
seq2seq.py (encoder-decoder), task_rows.py (fine-tuning tasks)."""
