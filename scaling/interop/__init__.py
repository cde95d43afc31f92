"""The `scaling convert` commands: importer.py (--from-hf), exporter.py (--to-hf) and
stream.py (tensors into sharded parameters and back). What each HuggingFace architecture
means in our parameter tree lives in scaling/convert/, reached through the families'
`hf_converter` hooks."""
