"""Plain-text table for the terminal (tabulate), optionally with ANSI colour."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tabulate import tabulate

from patchcheck.model import Verdict
from patchcheck.report._common import (
    clean,
    label,
    matrix,
    one_line,
    prereq_lines,
    result_error,
    short_detail,
    tree_identity,
    verdict_counts,
)

if TYPE_CHECKING:
    from patchcheck.report import Report

_GREEN, _YELLOW, _RED, _MAGENTA = "32", "33", "31", "35"
COLORS = {
    Verdict.PRESENT: _GREEN,
    Verdict.NOT_APPLICABLE: _GREEN,
    Verdict.BACKPORTABLE: _YELLOW,
    Verdict.CONFLICTING: _RED,
    Verdict.PARTIAL: _RED,
    Verdict.ERROR: _MAGENTA,
}
_MISSING = "-"  # a bug x tree cell the run did not produce


def paint(text: str, verdict: str, color: bool) -> str:
    code = COLORS.get(Verdict(verdict)) if verdict in COLORS else None
    if not color or code is None:
        return text
    return f"\x1b[{code}m{text}\x1b[0m"


def render_table(report: Report, *, color: bool = False) -> str:
    m = matrix(report)
    lines: list[str] = []
    for t in m.trees:
        lines.append("tree " + clean(tree_identity(t)))
        lines.extend(f"  note: {one_line(n)}" for n in t.notes)
    if lines:
        lines.append("")

    if len(m.trees) <= 1:
        tree = m.trees[0] if m.trees else None
        rows: list[list[str]] = []
        for b in m.bugs:
            r = m.get(b, tree) if tree else None
            if r is None:
                rows.append([b.id, b.severity, _MISSING, "", ""])
                continue
            rows.append([b.id, b.severity, paint(r.verdict, r.verdict, color), r.method or "", short_detail(r)])
        headers = ["bug", "severity", "verdict", "method", "detail"]
    else:
        rows = []
        for b in m.bugs:
            row = [b.id, b.severity]
            for t in m.trees:
                r = m.get(b, t)
                row.append(_MISSING if r is None else paint(label(r.verdict, r.method), r.verdict, color))
            rows.append(row)
        headers = ["bug", "severity"] + [clean(t.name) for t in m.trees]

    # disable_numparse: a bug id or tree name like "4.19" must not be reformatted as a number
    lines.append(tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True))
    lines.append("")
    counts = verdict_counts(report.results)
    summary = ", ".join(paint(f"{n} {v}", v, color) for v, n in counts.items())
    lines.append("summary: " + (summary or "no results"))
    # a conflict's prerequisites (--upstream-repo): under the table, per cell and patch
    for r in report.results:
        for p in r.patches:
            pre = prereq_lines(p)
            if pre:
                lines += ["", f"prerequisites of {clean(r.bug.id)} on {clean(r.tree.name)}: {one_line(p.subject)}"]
                lines.extend(f"  {clean(x)}" for x in pre)
    # the cells cut an error short (and the matrix shows none): each one in full, once
    errors = dict.fromkeys(
        f"error: {clean(r.bug.id)}: {result_error(r)}" for r in report.results if r.verdict == Verdict.ERROR
    )
    if errors:
        lines.append("")
        lines.extend(errors)
    return "\n".join(lines) + "\n"
