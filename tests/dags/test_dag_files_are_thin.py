"""A DAG file reads like the guide's page: its doc, its Params and task declarations that each call one
function or operator. The logic lives in the prism package, where it has unit tests. Measured here: at
most 20% of a DAG file's code lines (not blank, not a comment, not the module's doc) sit inside
function bodies."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"
FILES = sorted(DAGS.glob("*.py"))
LIMIT = 0.20


def code_lines(source: str) -> set[int]:
    """Line numbers that hold code: a token other than a comment, a newline or the module docstring."""
    tree = ast.parse(source)
    doc = set()
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        doc = set(range(tree.body[0].lineno, tree.body[0].end_lineno + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return lines - doc


def body_lines(source: str) -> set[int]:
    """Line numbers inside the body of any function (nested ones counted once)."""
    inside: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(range(node.body[0].lineno, node.end_lineno + 1))
    return inside


def share(path: Path) -> tuple[int, int]:
    source = path.read_text()
    code = code_lines(source)
    return len(code & body_lines(source)), len(code)


def test_the_measure_counts_function_bodies_and_skips_doc_and_comments():
    source = (
        '"""doc\nmore doc"""\nimport x\n\n# a comment\n@task\ndef f(a):\n    """task doc"""\n    return a + 1\n\nf(x)\n'
    )
    assert code_lines(source) == {3, 6, 7, 8, 9, 11}
    assert body_lines(source) & code_lines(source) == {8, 9}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_a_dag_file_keeps_its_logic_in_the_prism_package(path):
    inside, total = share(path)
    assert inside <= LIMIT * total, (
        f"{path.name}: {inside} of {total} code lines ({inside / total:.0%}) are function bodies"
    )
