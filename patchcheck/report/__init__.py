"""Report renderers: one ``Report`` of result objects, five output formats.

Every renderer reads the same ``Report`` so the formats cannot disagree about a verdict;
``render`` is the only entry point the CLI needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from patchcheck.errors import BadInput
from patchcheck.model import Bug, BugResult, TreeInfo

FORMATS = ("table", "json", "markdown", "html", "junit")


@dataclass
class Report:
    results: list[BugResult]  # every bug x tree cell of the run, in run order
    trees: list[TreeInfo]  # column order
    bugs: list[Bug]  # row order
    version: str  # patchcheck.__version__
    generated: str  # ISO timestamp


def _renderer(fmt: str) -> Callable[..., str]:
    # Imported lazily: a table run need not load the HTML/XML machinery.
    if fmt == "table":
        from patchcheck.report.table import render_table

        return render_table
    if fmt == "json":
        from patchcheck.report.json_report import render_json

        return render_json
    if fmt == "markdown":
        from patchcheck.report.markdown import render_markdown

        return render_markdown
    if fmt == "html":
        from patchcheck.report.html import render_html

        return render_html
    if fmt == "junit":
        from patchcheck.report.junit import render_junit

        return render_junit
    raise BadInput(f"unknown report format {fmt!r} (expected one of: {', '.join(FORMATS)})")


def render(report: Report, fmt: str, *, color: bool = False) -> str:
    """The report as text in ``fmt``; ``color`` only affects ``table`` (ANSI escapes)."""
    fn = _renderer(fmt)
    if fmt == "table":
        return fn(report, color=color)
    return fn(report)


__all__ = ["FORMATS", "Report", "render"]
