"""Docs that cannot drift: docs/design.md's layout names every module under scaling/ and
nothing that does not exist, and every `scaling ...` command the README shows parses."""

import re
import shlex
from pathlib import Path

import pytest

from scaling.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scaling"


def _layout_block() -> list[str]:
    """The fenced block under docs/design.md's `## Layout` heading, as lines."""
    text = (ROOT / "docs" / "design.md").read_text()
    section = text.split("\n## Layout\n", 1)[1]
    block = section.split("```", 2)[1]
    return block.splitlines()


def _entries(lines: list[str]) -> dict[str, str]:
    """Top-level layout entries (`  name.py` or `  name/`) -> their text, continuation lines
    included."""
    entries: dict[str, str] = {}
    current = None
    for line in lines:
        m = re.match(r"^  (\S+)", line)
        if m:
            current = m.group(1)
            entries[current] = line
        elif current and line.startswith("   "):
            entries[current] += "\n" + line
        else:
            current = None
    return entries


def _modules() -> list[Path]:
    return sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def test_layout_names_every_module():
    lines = _layout_block()
    entries = _entries(lines)
    missing = []
    for rel in _modules():
        if len(rel.parts) == 1:  # its own entry, or named beside a related one
            named = re.search(rf"\b{re.escape(rel.name)}", "\n".join(lines))
            if rel.name not in entries and not named:
                missing.append(str(rel))
            continue
        top = rel.parts[0] + "/"
        text = entries.get(top, "")
        # the module's stem as a word, and each sub-package on the way as a word
        for word in [*rel.parts[1:-1], rel.stem]:
            if not re.search(rf"(?<![\w.]){re.escape(word)}(?![\w])", text):
                missing.append(f"{rel} ({word!r} not in the {top} entry)")
                break
    assert not missing, "docs/design.md's layout does not name: " + ", ".join(missing)


def test_layout_names_nothing_that_does_not_exist():
    entries = _entries(_layout_block())
    stale = []
    for name, text in entries.items():
        if name.endswith("/") and name[:-1] in {"configs", "launch", "docs", "tests"}:
            continue
        if name not in ("scaling/",) and not (PACKAGE / name.rstrip("/")).exists():
            if not (ROOT / name.rstrip("/")).exists():
                stale.append(name)
            continue
        if name.endswith("/"):
            pkg = PACKAGE / name.rstrip("/")
            files = {p.name for p in pkg.rglob("*.py")} | {
                p.name + "/" for p in pkg.rglob("*") if p.is_dir()
            }
            described = text.split(None, 1)[1]
            for token in re.findall(r"(?<![\w/])(\w+\.py|\w+/)(?=[\s(),;]|$)", described):
                if token not in files:
                    stale.append(f"{name}{token}")
    assert not stale, "docs/design.md's layout names what does not exist: " + ", ".join(stale)


def _readme_commands() -> list[str]:
    """Every `scaling ...` command line in the README's bash blocks (continuations joined)."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("#", 1)[0].strip()
            for part in re.split(r"&&|\|", line):
                part = part.strip()
                if part.startswith("scaling "):
                    commands.append(part)
    return commands


def test_readme_shows_commands():
    assert len(_readme_commands()) >= 15


@pytest.mark.parametrize("command", _readme_commands())
def test_readme_command_parses(command):
    argv = shlex.split(command)[1:]
    if argv[:1] == ["--host-devices"]:
        argv = argv[2:]
    args = build_parser().parse_args(argv)  # SystemExit (exit 2) on an unknown flag
    assert args.command == argv[0]
