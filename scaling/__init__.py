"""scaling: one JAX/Flax codebase for the Transformer family at any scale."""

__version__ = "0.1.0"
