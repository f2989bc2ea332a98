"""docs/security.md says every row is a test: each test it names exists, and its totals add up."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "security.md"
NODE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")
CONTINUED = re.compile(r";\s*::(\w+)")


def _rows() -> list[list[str]]:
    rows = []
    matrix = DOC.read_text().split("\n## Params: what a trigger may choose")[0]  # the rules after it are prose
    for line in matrix.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4 and cells[0] != "input or attack":
            rows.append(cells)
    return rows


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_every_row_names_tests_that_exist():
    rows = _rows()
    assert len(rows) > 100
    missing = []
    for cells in rows:
        test = cells[3]
        nodes = NODE.findall(test)
        assert nodes, f"row without a test: {cells[0][:80]}"
        for path, name in nodes:
            names = [name]
            # "file::a; ::b" names a second test of the same file
            tail = test[test.index(f"{path}::{name}") + len(f"{path}::{name}") :].split("tests/")[0]
            names += CONTINUED.findall(tail)
            defined = _defined(ROOT / path) if (ROOT / path).exists() else set()
            missing += [f"{path}::{n}" for n in names if n not in defined]
    assert not missing, missing


def test_the_totals_match_the_rows():
    text = DOC.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    per_area = {}
    for section in sections[1:]:
        title, _, body = section.partition("\n")
        count = sum(1 for line in body.splitlines() if NODE.search(line) and line.startswith("| "))
        if count:
            per_area[title.strip()] = count
    summary = dict(re.findall(r"^\| \[(.+?)\]\(#.*?\) \| .*? \| (\d+) \|$", text, flags=re.M))
    assert {k: int(v) for k, v in summary.items()} == per_area
    total = int(re.search(r"^\| \*\*total\*\* \| \| \*\*(\d+)\*\* \|$", text, flags=re.M).group(1))
    assert total == sum(per_area.values())
