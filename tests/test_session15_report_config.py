"""reports.parameters in a config read from another folder: file parameters are the config's, like its other paths."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from finops_kit import report


def test_config_file_parameters_are_read_from_the_config_folder(tmp_path, monkeypatch):
    """A regression review: `finops-kit report --config /project/finops.yaml` run from another folder failed with
    "data/samples/_ai_units/gpu: file not found" -- the config's side files were read from the working directory.
    They are the config folder's now (as its roadmap and allocation files are); a -p value stays the command line's,
    and a URL or an absolute path is left as given."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "runs.csv").write_text("run,cost\n")
    config = project / "finops.yaml"
    config.write_text("reports:\n  parameters:\n    runs_file: data/runs.csv\n    gpu_metrics_dir: s3://b/gpu\n"
                      "    host_map_file: /abs/hosts.csv\n    top: 3\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    params = report.config_relative_files({"runs_file": "data/runs.csv", "gpu_metrics_dir": "s3://b/gpu",
                                           "host_map_file": "/abs/hosts.csv", "top": 3,
                                           "trace_paths": ["data/runs.csv", "s3://b/t.csv"]}, str(config))
    assert params["trace_paths"] == [str(project / "data" / "runs.csv"), "s3://b/t.csv"]  # a list: each file
    assert Path(params["runs_file"]) == project / "data" / "runs.csv" and Path(params["runs_file"]).is_file()
    assert params["gpu_metrics_dir"] == "s3://b/gpu" and params["host_map_file"] == "/abs/hosts.csv"
    assert params["top"] == 3
    # as the kernels receive it: relative to the working directory, and it still names the config's file
    assert os.path.normpath(elsewhere / report.project_relative(params["runs_file"])) == str(project / "data" / "runs.csv")
    # through the command's own settings
    parser = argparse.ArgumentParser()
    report.configure_parser(parser)
    args = parser.parse_args(["--all", "--config", str(config)])
    assert Path(report._settings(args)["parameters"]["runs_file"]) == project / "data" / "runs.csv"


def test_a_report_run_whose_failures_are_all_no_data_exits_3():
    """A regression review: `report forecast_vs_actual -p as_of=2025-09-30` (before the data) stops on "no data for
    this scope" in a cell, and the run exited 1, "a report failed", while every other command says 3."""
    def result(status: str, error: str | None = None) -> report.ReportResult:
        return report.ReportResult("r", "r", "r", status, {}, "r.html", None, "", 0.0, error=error)

    nodata = "cell 3: NoDataError: no data for this scope (whole warehouse) on or before 2025-09-30, the as-of day"
    assert report.exit_code([result("ok")]) == 0
    assert report.exit_code([result("ok"), result("failed", nodata)]) == 3
    assert report.exit_code([result("failed", nodata), result("failed", "cell 5: KeyError: 'level'")]) == 1
    assert report.exit_code([result("timeout", "cell timeout: a cell exceeded 600 s")]) == 1


def test_an_open_scope_is_said_in_words_not_placeholders():
    """A regression review: an as-of before the data printed "no data for this scope (billing periods first .. last
    (inclusive); ...)", the open bounds' placeholder words read as if they were values."""
    from finops_kit.scope import Scope

    assert Scope.parse({}).period_text() == "every billing period"
    assert Scope.parse({"billing_period_start": "2026-10"}).period_text() == "billing periods from 2026-10"
    assert Scope.parse({"date_end": "2026-10-18"}).period_text() == "charge days up to 2026-10-18 (inclusive)"
    assert "first" not in Scope.parse({}).describe() and "last" not in Scope.parse({}).describe()
