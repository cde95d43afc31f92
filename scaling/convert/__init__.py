"""HuggingFace interop: `scaling convert --from-hf DIR` / `--to-hf DIR` (docs in README,
"Using HuggingFace checkpoints").

hf_files.py reads HF directories, mapping.py holds the machinery, one file per architecture
family maps tensors (gpt2.py, openai_gpt.py, gpt_neo.py, bert.py), families.py is what the
families' `hf_converter` hooks return, importer.py and exporter.py are the two commands.
"""
