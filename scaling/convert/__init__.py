"""HuggingFace architectures in our parameter tree (the families' `hf_converter` hooks).

hf_files.py reads HF directories tensor by tensor, mapping.py holds the rule machinery, one
file per architecture maps tensors (gpt2.py, openai_gpt.py, gpt_neo.py, bert.py) and
families.py is what the hooks return. Pure NumPy: the commands that use them (JAX, orbax)
are in scaling/interop/. README: "Using HuggingFace checkpoints".
"""
