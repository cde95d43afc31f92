"""Presets, one file per family; names are a contract (docs/design.md, "Presets").

    get_preset("gpt-tiny")      # a Config, with name="gpt-tiny"
    preset_names()              # every registered name, sorted

Adding a preset: a function returning a `Config` in the family's file, registered with
`@PRESETS.add("name")`. Adding a preset file: define its `PRESETS` table and add it to
`_TABLES` below.
"""

from __future__ import annotations

import dataclasses

from scaling.config import Config, ConfigError
from scaling.presets import bert, gpt, transformer

_TABLES = (gpt.PRESETS, bert.PRESETS, transformer.PRESETS)


def _all() -> dict:
    merged: dict = {}
    for table in _TABLES:
        for name, fn in table.items():
            if name in merged:
                raise ValueError(f"preset {name!r} is defined in two preset files")
            merged[name] = fn
    return merged


_PRESETS = _all()


def preset_names() -> list[str]:
    """Every registered preset name, sorted."""
    return sorted(_PRESETS)


def get_preset(name: str) -> Config:
    """The preset called `name`, or a ConfigError listing the known names."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(preset_names())}")
    return dataclasses.replace(_PRESETS[name](), name=name)
