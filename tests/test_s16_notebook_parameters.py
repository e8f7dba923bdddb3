"""A notebook cell must not rebind a parameter: the explorers at the end of a notebook (and every later cell) read
the parameters again, so a parameter reused as a loop or scratch variable breaks them. The forecast report's masked
anomalies cell did ``top = masked.iloc[0]`` and its explorer then passed a table row as ``top=`` to the forecast:
"ValueError: The truth value of a Series is ambiguous" in JupyterLab, at every data size."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _names(node: ast.AST) -> set[str]:
    return {x.id for x in ast.walk(node) if isinstance(x, ast.Name)}


def _bound(tree: ast.AST) -> list[tuple[str, int]]:
    """(name, line) of every name an assignment, loop, ``with`` or comprehension in ``tree`` binds."""
    out = []
    for n in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(n, ast.Assign):
            targets = list(n.targets)
        elif isinstance(n, ast.AugAssign | ast.AnnAssign | ast.For | ast.comprehension | ast.NamedExpr):
            targets = [n.target]
        elif isinstance(n, ast.With):
            targets = [i.optional_vars for i in n.items if i.optional_vars is not None]
        out += [(name, getattr(n, "lineno", 0)) for t in targets for name in _names(t)]
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_cell_rebinds_a_parameter(path):
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    if not params:
        pytest.skip("no parameters cell")
    names = {name for name, _ in _bound(ast.parse(params[0].source))}
    rebound = [f"code cell {i}, line {line}: {name}" for i, c in enumerate(code) if c is not params[0]
               for name, line in _bound(ast.parse(c.source)) if name in names]
    assert not rebound, rebound
