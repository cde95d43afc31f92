"""The names each model setting accepts, importable without JAX, so that config validation
rejects a bad `--set` value before any heavy import (docs/reliability.md, fast failure).

The modules that implement the choices hold the tables (activations in layers.py, remat
policies in stack.py, attention paths in attention.py) and check at import that their
tables have exactly these names, so the two cannot drift apart.
"""

NORMS = ("pre", "post")  # model.norm: pre-LN (GPT-2/3) or post-LN (Vaswani, BERT, GPT-1)
POSITION_EMBEDDINGS = ("learned", "sinusoidal")  # model.pos_emb
ACTIVATIONS = ("gelu", "gelu_tanh", "relu")  # model.activation (layers.ACTIVATIONS)
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")  # model.remat (stack.REMAT_POLICIES)
ATTENTION = ("xla", "cudnn", "splash", "auto")  # model.attention; auto: scaling/platform.py


def check_table(table, names: tuple[str, ...], setting: str) -> None:
    """Import-time check that an implementation table covers exactly the declared names."""
    if tuple(table) != names:
        raise RuntimeError(f"{setting}: the implementation table has {tuple(table)}, "
                           f"scaling/models/choices.py declares {names}")
