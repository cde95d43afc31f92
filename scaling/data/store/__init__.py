"""The token store: a corpus tokenized once, on Apache Beam, into shards every host reads its
share of. layout.py (files and manifest), shards.py (what a worker builds), sample.py (the
tokenizer sample), pipeline.py (Beam), prepare.py (`scaling prepare`), reader.py (training
reads it), for_run.py (the store a run uses; built in the cache when the spec is not one)."""
