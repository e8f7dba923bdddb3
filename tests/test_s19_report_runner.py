"""The report runner's shortcuts give what the long way gives: the run's input fingerprints (read again whenever the
warehouse may have changed), localize_node's pre-search (the same strings as localize_paths everywhere) and
accessible_html's split of a page (the same parts as the regex split)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import finops_kit as fk
from finops_kit import report

REPO = Path(__file__).resolve().parents[1]


def test_a_run_reads_the_fingerprint_again_only_when_the_warehouse_changed(tmp_path, monkeypatch):
    gcp = sorted((REPO / "data" / "samples" / "gcp").glob("*.jsonl.gz"))
    wh = str(tmp_path / "wh.duckdb")
    fk.ingest([str(gcp[0])], warehouse=wh, progress=False)
    reads: list[str] = []
    real = report.input_fingerprint
    monkeypatch.setattr(report, "input_fingerprint", lambda w: reads.append(w) or real(w))
    prints = report.InputFingerprints()

    first = prints.get(wh)  # written a moment ago: its stat may not have settled, so it is not kept
    assert prints.get(wh) == first and len(reads) == 2

    monkeypatch.setattr(report, "FINGERPRINT_SETTLED_S", 0.0)
    time.sleep(0.05)
    reads.clear()
    assert prints.get(wh) == prints.get(wh) == prints.get(wh) == first and len(reads) == 1

    fk.ingest([str(gcp[1])], warehouse=wh, progress=False)  # an ingest between two reports: seen
    reads.clear()
    after = prints.get(wh)
    assert len(reads) == 1 and after["files"] == 2 and after["sha256"] != first["sha256"]
    assert after == report.input_fingerprint(wh)


def test_localize_node_rewrites_exactly_what_localize_paths_rewrites(tmp_path):
    pieces = ["/", "\\", "\\/", "tmp", "usr", "lib", "lib64", "work", "x", ".", "..", "_", "@", "+", "-", " ", ":",
              "~", "file://", "file\\:\\/\\/", "\x1b[0;32m", "m", "a", '"', ">", "(", "\n", "\u00e9", "TMP", "lost+found"]
    rng = random.Random(19)
    escaped = str(tmp_path).replace("/", "\\/").replace("_", "\\_").replace("-", "\\-")  # as nb.text() writes it
    texts = [f"{tmp_path}/costs.csv", "see " + escaped + "\\/a\\.csv", "../../work/main/x",
             "\x1b[0;32m/tmp/x.py", "/./x", "a</td><td>/usr/lib/x</td>"]
    assert all(report.localize_paths(t) != t for t in (texts[0], texts[1], texts[3], texts[5]))  # real rewrites
    texts += ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 16))) for _ in range(20000)]
    for text in texts:
        assert report.localize_node({"k": [text]})["k"][0] == report.localize_paths(text), text


def test_accessible_html_splits_a_page_as_the_regex_does():
    pieces = ["<script", "<SCRIPT ", "<scripts", "</script>", "</script >", "</SCRIPT\n>", "<style>", "</style>",
              "<!--", "-->", "--", ">", "<", "x", " ", "\n", "<!-->", "</scr", '<img src="a">', '<div class="jp-Cell">',
              "<\u017fcript>", "<scr\u0131pt>", "</\u017ftyle>", "</SCR\u0130PT>"]  # letters that fold to s and i
    rng = random.Random(19)
    for _ in range(20000):
        page = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        assert report._raw_split(page) == report._RAW_TEXT.split(page), page
