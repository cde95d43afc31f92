"""HuggingFace checkpoints and tokenizers, both ways (`scaling convert`; docs/huggingface.md).

from_hf.py        `convert --from-hf DIR --workdir RUN`: an HF model directory becomes a run
to_hf.py          `convert --workdir RUN --to-hf DIR`: a run becomes an HF model directory
stream.py         HF tensors into our sharded parameters and back, one tensor at a time
model_files.py    reading an HF model directory (config.json, safetensors) tensor by tensor
mapping.py        the rule machinery: which HF tensors make which of our parameters
converters.py     each family's converter (the architectures it imports, the one it exports)
gpt2.py, openai_gpt.py, gpt_neo.py, bert.py   one HF architecture each, in our tree
tokenizer_json.py our tokenizers as a tokenizer.json `transformers` loads
task_heads.py     fine-tuned BERT heads as HF task classes (sequence classification, choice)

The mappings are pure NumPy; JAX and orbax come in with the commands.
"""
