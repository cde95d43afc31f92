"""A table of presets: zero-argument functions returning a `Config`, registered by name."""

from __future__ import annotations

from collections.abc import Callable

from scaling.config import Config


class PresetTable(dict[str, Callable[[], Config]]):
    """name -> preset function; `@table.add("name")` registers one."""

    def add(self, name: str):
        """Decorator: register `fn` under `name` (a name may be registered once)."""

        def wrap(fn: Callable[[], Config]):
            if name in self:
                raise ValueError(f"preset {name!r} is registered twice")
            self[name] = fn
            return fn

        return wrap
