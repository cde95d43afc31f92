"""Presets, one file per family. Importing this package registers every preset by name."""

from configs import bert, gpt, transformer  # noqa: F401
