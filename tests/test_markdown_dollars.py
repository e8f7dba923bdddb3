"""Money in Markdown must not become math: JupyterLab (and MathJax) read two ``$`` in one Markdown text as an
inline formula, so "**$23,281.37/month** (top 9 shown) for a one-time **$1,204.00**" rendered as
"23,281.37/month∗∗(top9shown)foraone−time∗∗". Every Markdown the kit emits goes through ``nb.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from finops_kit.notebook import _MD_CODE, NO_MATH, escape_dollars, md

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def unescaped_dollars(text: str) -> list[str]:
    """The ``$`` signs JupyterLab could pair into math: outside code, not preceded by a backslash (with context)."""
    prose = _MD_CODE.sub(" ", text)
    return [prose[max(0, m.start() - 20):m.end() + 20] for m in re.finditer(r"(?<!\\)\$", prose)]


def math_paragraphs(text: str) -> list[str]:
    """Paragraphs of a Markdown cell in which JupyterLab would pair dollar signs into math: two ``$`` in one
    paragraph, escaped or not (MathJax typesets the rendered cell, where ``\\$`` is a plain ``$`` again)."""
    prose = _MD_CODE.sub(" ", text)
    return [para for para in re.split(r"\n\s*\n", prose) if para.count("$") >= 2]


def unsafe_markdown_output(text: str) -> list[str]:
    """Why a Markdown *output* could render money as math: an unescaped ``$``, or dollar signs outside the
    ``mathjax_ignore`` wrapper that ``nb.md`` puts around them."""
    out = unescaped_dollars(text)
    if "$" in _MD_CODE.sub(" ", text) and not text.startswith(f'<div class="{NO_MATH}">'):
        out.append("dollar signs without the mathjax_ignore wrapper: " + text[:60])
    return out


def test_escape_dollars_escapes_money_and_leaves_code_alone():
    text = ("**$23,281.37/month** (top 9 shown) for a one-time **$1,204.00**; already \\$5. "
            "Code `SELECT '$x'` and\n\n```json\n{\"price\": \"$1\"}\n```\nafter $7")
    out = escape_dollars(text)
    assert unescaped_dollars(out) == []
    assert "**\\$23,281.37/month**" in out and "**\\$1,204.00**" in out and "already \\$5" in out
    assert "\\\\$" not in out  # an escaped dollar is not escaped twice
    assert "`SELECT '$x'`" in out and '{"price": "$1"}' in out  # code shows verbatim (no backslash)
    assert escape_dollars(out) == out
    assert md("a $1 b $2").data == '<div class="mathjax_ignore">\n\na \\$1 b \\$2\n\n</div>'
    assert unsafe_markdown_output(md("**$1.00/month** for **$2.00**").data) == []
    assert unsafe_markdown_output("**\\$1.00/month** for **\\$2.00**")  # escaped but typeset by MathJax
    assert md("no money `$x`").data == "no money `$x`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebooks_emit_markdown_only_through_nb_md(path):
    """No code cell builds IPython Markdown itself (bypassing the escaping), and no Markdown cell pairs dollars."""
    book = nbformat.read(str(path), as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert not re.search(r"(?<![\w.])Markdown\(", cell.source), f"{path.name} cell {cell.id}: use nb.md()"
        elif cell.cell_type == "markdown":
            assert not math_paragraphs(cell.source), f"{path.name} cell {cell.id}: {math_paragraphs(cell.source)}"


def markdown_outputs(executed: Path) -> list[tuple[str, str]]:
    """(cell id, text) of every text/markdown output of an executed notebook."""
    book = nbformat.read(str(executed), as_version=4)
    return [(cell.get("id", "?"), "".join(out["data"]["text/markdown"]))
            for cell in book.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "text/markdown" in out.get("data", {})]
