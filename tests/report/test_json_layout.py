"""The JSON report's layout: the document indented, each result on one line (rendered at C
speed), the same data as the report's dict."""

from __future__ import annotations

import json

from patchcheck.report import RenderOptions, Report
from patchcheck.report.json_report import render, report_dict
from testing.report_fixtures import GENERATED, VERSION, sample_report


def test_each_result_is_one_line_of_the_same_data() -> None:
    report = sample_report()
    out = render(report, RenderOptions())
    assert json.loads(out) == json.loads(json.dumps(report_dict(report)))
    lines = out.splitlines()
    result_lines = [ln for ln in lines if ln.startswith('    {"bug": ')]
    assert len(result_lines) == len(report.results) > 1
    assert out.endswith("]\n}\n")


def test_no_results_is_an_empty_list() -> None:
    out = render(Report([], [], [], VERSION, GENERATED), RenderOptions())
    assert json.loads(out)["results"] == []
