"""The JSON report's layout: the document indented, each result on one line (rendered at C
speed), the same data as the report's dict."""

from __future__ import annotations

import dataclasses
import json

from patchcheck.report.json_report import encode_result, render, report_dict
from patchcheck.report.model import RenderOptions, Report
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


def test_results_encoded_beside_the_check_are_used_as_they_are() -> None:
    """A check's workers encode each result (Report.encoded): the report is the same
    document, and takes their lines verbatim; a list that does not match the results is
    not used."""
    report = sample_report()
    plain = render(report, RenderOptions())
    lines = [encode_result(r) for r in report.results]
    assert render(dataclasses.replace(report, encoded=lines), RenderOptions()) == plain
    marked = [ln.replace('"bug": ', '"bug":  ', 1) for ln in lines]  # same data, other bytes
    out = render(dataclasses.replace(report, encoded=marked), RenderOptions())
    assert all(ln in out for ln in marked) and json.loads(out) == json.loads(plain)
    assert render(dataclasses.replace(report, encoded=marked[1:]), RenderOptions()) == plain
