"""What a rendered report shows, as text, and the warehouse figures it must equal: shared by the consistency test
(reports rendered from the warehouse) and the FOCUS dataset test (the same reports rendered from a dataset)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CURATED = ("tagging_audit", "storage_lifecycle", "spot_analysis", "forecast_vs_actual", "ai_unit_economics")
#: One scope for every report: three closed billing periods of every provider.
SCOPE = {"billing_period_start": "2026-08", "billing_period_end": "2026-10"}


def texts(ipynb: Path) -> str:
    """Everything a reader sees in a report's outputs, as plain text (markdown ``\\$`` unescaped, HTML stripped)."""
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append("".join(out["text"]))
            data = out.get("data", {})
            for mime in ("text/markdown", "text/plain"):
                if mime in data:
                    parts.append("".join(data[mime]).replace("\\$", "$"))
            if "text/html" in data and "text/markdown" not in data:
                parts.append(html.unescape(re.sub(r"<[^>]+>", " ", "".join(data["text/html"]))))
    return "\n".join(parts)


def one(pattern: str, text: str, what: str) -> str:
    """The first match of ``pattern`` in ``text``; fails naming ``what`` when the report does not show it."""
    found = re.findall(pattern, text)
    assert found, f"{what}: not shown (pattern {pattern!r})"
    return found[0]


@contextmanager
def headline(warehouse: str | Path) -> Iterator[tuple[Any, Any, Any]]:
    """``finops-kit metrics`` of SCOPE and of its last month (October) on ``warehouse``, and the resolved scope
    (whose connection stays open inside the block)."""
    import finops_kit as fk
    from finops_kit import scope as S
    from finops_kit.metrics import metrics

    con = fk.connect(warehouse, read_only=True)
    try:
        sc = S.resolve(con, str(REPO / "finops.yaml"), SCOPE)
        oct_ = S.resolve(con, str(REPO / "finops.yaml"), billing_period_start="2026-10", billing_period_end="2026-10")
        yield metrics(con, sc), metrics(con, oct_), sc
    finally:
        con.close()
