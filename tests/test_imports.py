"""The project's modules import each other without cycles, lazy (in-function) imports
included, at the level of modules and of the packages they form."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "scaling"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The project module `name` refers to (a module, or its nearest package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    """Project modules `module` imports anywhere in its body, plus the packages Python runs
    on the way (importing a.b.c runs a/__init__ and a/b/__init__)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            names |= {f"{base}.{a.name}" for a in node.names} | {base}
    out = set()
    for name in names:
        target = _resolve(name) if name.startswith("scaling") else None
        while target and target != module and not module.startswith(target + "."):
            out.add(target)
            target = target.rpartition(".")[0] or None
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_modules():
    graph = {m: _imports(m) for m in MODULES}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def _unit(module: str) -> str:
    """scaling.<subpackage> for modules of a subpackage, the module itself at the top."""
    parts = module.split(".")
    if len(parts) > 2 or (MODULES[module].name == "__init__.py" and len(parts) == 2):
        return ".".join(parts[:2])
    return module


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for m in MODULES:
        graph.setdefault(_unit(m), set()).update(
            _unit(t) for t in _imports(m) if _unit(t) != _unit(m))
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_walker_sees_a_cycle_through_a_lazy_import(tmp_path):
    """The oracle for the two tests above: a known cycle hidden in a function is found."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert "scaling.config" in _imports("scaling.validate")
    # a lazy import inside a function body counts (the commands import their work lazily)
    assert "scaling.train.loop" in _imports("scaling.commands.train")


def test_every_module_imports():
    """Every module imports (the fast tier, `pytest -m "not slow"`, touches all of them)."""
    import importlib

    failed = []
    for name in sorted(MODULES):
        try:
            importlib.import_module(name)
        except ImportError as e:
            failed.append(f"{name}: {e}")
    assert not failed, "\n".join(failed)
