"""Every test that docs/reliability.md and docs/testing.md cite exists, in the file cited.

Citations are backticked: `tests/test_x.py::test_name`, `tests/test_x.py`, and `::test_name`
or a bare `test_name` after them (the same file as the citation before it, on that line).
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("docs/reliability.md", "docs/testing.md")
SPAN = re.compile(r"`([^`]+)`")
CITE = re.compile(r"^(?:(tests/[\w/]+\.py))?(?:::)?(test_\w+)?$")


def _defined(path: Path) -> set[str]:
    return set(re.findall(r"^\s*(?:async )?def (test_\w+)\(", path.read_text(), re.M))


def citations(text: str):
    """(line number, file, test name or None) for each citation in a document's text."""
    for number, line in enumerate(text.splitlines(), start=1):
        current = None
        for span in SPAN.findall(line):
            m = CITE.match(span.strip())
            if m and (m.group(1) or m.group(2)):
                current = m.group(1) or current
                yield number, current, m.group(2)


@pytest.mark.parametrize("doc", DOCS)
def test_every_cited_test_exists(doc):
    if not (ROOT / doc).exists():
        pytest.skip(f"{doc} not present")
    every = {}
    for path in (ROOT / "tests").glob("test_*.py"):
        every[f"tests/{path.name}"] = _defined(path)
    cited = list(citations((ROOT / doc).read_text()))
    assert cited, f"{doc} cites no tests"
    missing = []
    for number, file, name in cited:
        if file is not None and file not in every:
            missing.append(f"{doc}:{number}: {file} does not exist")
        elif name is not None and file is not None and name not in every[file]:
            missing.append(f"{doc}:{number}: {file} has no {name}")
        elif name is not None and file is None and not any(name in s for s in every.values()):
            missing.append(f"{doc}:{number}: no test file defines {name}")
    assert not missing, "\n".join(missing)


def test_the_checker_sees_a_missing_test():
    """The parser on a made-up line: the file carries over to `::name` and bare names."""
    line = (
        "| `tests/test_cli.py::test_bad_input_exits_2_with_one_line`, `::test_renamed_away`,"
        " `test_mesh_that_does_not_match_devices`, `model.n_heads` |"
    )
    assert list(citations(line)) == [
        (1, "tests/test_cli.py", "test_bad_input_exits_2_with_one_line"),
        (1, "tests/test_cli.py", "test_renamed_away"),
        (1, "tests/test_cli.py", "test_mesh_that_does_not_match_devices"),
    ]
    defined = _defined(ROOT / "tests" / "test_cli.py")
    assert "test_renamed_away" not in defined
    assert "test_mesh_that_does_not_match_devices" in defined
