"""One pattern per command: every command `scaling/cli.py` registers is a module of
scaling/commands/ with `add_arguments(parser)` and `run(args)`, and cli.py stays the table
(no command body creeps back into it)."""

import argparse
import ast
import inspect
from pathlib import Path

from scaling import cli

ROOT = Path(__file__).resolve().parents[1]
COMMANDS_DIR = ROOT / "scaling" / "commands"
CLI_MAX_LINES = 150


def test_every_registered_command_is_a_module_of_scaling_commands():
    names = [name for name, _, _ in cli.COMMANDS]
    assert len(names) == len(set(names)), names
    for name, module, help_line in cli.COMMANDS:
        path = Path(module.__file__).resolve()
        assert path.parent == COMMANDS_DIR, f"{name}: {path} is not under scaling/commands/"
        assert callable(getattr(module, "add_arguments", None)), f"{name}: no add_arguments"
        assert callable(getattr(module, "run", None)), f"{name}: no run"
        assert len(inspect.signature(module.add_arguments).parameters) == 1, name
        assert len(inspect.signature(module.run).parameters) == 1, name
        assert help_line.strip(), f"{name}: no help line"


def test_every_command_module_is_registered():
    """A module under scaling/commands/ with `run` is a command the table names (common.py
    holds the shared flags and checks, and is no command)."""
    registered = {Path(m.__file__).stem for _, m, _ in cli.COMMANDS}
    modules = {p.stem for p in COMMANDS_DIR.glob("*.py")} - {"__init__", "common"}
    assert modules == registered


def test_the_parser_dispatches_each_command_to_its_module_run():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(subparsers.choices) == [name for name, _, _ in cli.COMMANDS]
    for name, module, _ in cli.COMMANDS:
        assert subparsers.choices[name].get_default("fn") is module.run, name


def test_cli_stays_the_table():
    """cli.py: at most 150 lines, and no function that takes parsed args (a command body)
    besides main and the shared --host-devices check."""
    text = (ROOT / "scaling" / "cli.py").read_text()
    assert len(text.splitlines()) <= CLI_MAX_LINES
    functions = {n.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.FunctionDef)}
    assert functions <= {"error", "_host_devices", "build_parser", "main"}, functions
