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
    result_error,
    short_detail,
    tree_identity,
    verdict_counts,
)

if TYPE_CHECKING:
    from patchcheck.report.model import RenderOptions, Report, TriageReport

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


def render(report: Report, options: RenderOptions) -> str:
    color = options.color
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
    # the cells cut an error short (and the matrix shows none): each one in full, once
    errors = dict.fromkeys(
        f"error: {clean(r.bug.id)}: {result_error(r)}" for r in report.results if r.verdict == Verdict.ERROR
    )
    if errors:
        lines.append("")
        lines.extend(errors)
    return "\n".join(lines) + "\n"


def triage_summary(t: TriageReport) -> str:
    """The oops in a few lines, then the matching bugs with their scores and reasons."""
    oops = t.oops
    rows = [
        ("oops", oops.headline or "?"),
        ("function", oops.function or "?"),
        ("release", oops.release or "?"),
        ("command", oops.comm or "?"),
        ("trace", " < ".join(oops.trace) if oops.trace else "(none)"),
    ]
    rows += [("note", n) for n in oops.notes]
    lines = [f"{key + ':':<10} {clean(val)}" for key, val in rows]
    lines.append("")
    if not t.matches:
        lines.append(f"no known bug matches (threshold {t.threshold:.2f})")
        return "\n".join(lines) + "\n"
    width = max(len("bug"), *(len(m.bug) for m in t.matches))
    lines.append(f"{'score':<6} {'bug':<{width}}  why")
    lines += [f"{m.score:<6.2f} {m.bug:<{width}}  {m.why}" for m in t.matches]
    return "\n".join(lines) + "\n"


def render_triage(t: TriageReport, options: RenderOptions) -> str:
    text = triage_summary(t)
    if t.check is not None:
        text += "\n" + render(t.check, options)
    return text
