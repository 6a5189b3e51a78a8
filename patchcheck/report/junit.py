"""JUnit XML for CI dashboards (GitLab/GitHub/Jenkins): a suite per tree, a case per bug.

present -> pass, not-applicable -> skipped, backportable/conflicting/partially-present ->
failure (type = verdict), error -> error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from patchcheck.model import BugResult, Verdict
from patchcheck.report._common import (
    FINDING_VERDICTS,
    clean,
    hunk_text,
    label,
    matrix,
    one_line,
    prereq_lines,
    problem_hunks,
    result_error,
)

if TYPE_CHECKING:
    from patchcheck.report.model import RenderOptions, Report, TriageReport


_COUNTER = {"failure": "failures", "error": "errors", "skipped": "skipped"}


def _details(r: BugResult) -> str:
    """The body of a failure/error: each patch's verdict and evidence, then its failed hunks."""
    lines = [
        f"{r.bug.id}: {one_line(r.bug.title)} [{r.bug.severity}]",
        f"tree {r.tree.name}: {label(r.verdict, r.method)}",
    ]
    if r.verdict == Verdict.ERROR:
        lines.append(f"error: {result_error(r)}")
    for p in r.patches:
        opt = " (optional)" if p.optional else ""
        lines.append(f"- {one_line(p.subject) or p.msgid}{opt} <{p.msgid}>: {label(p.verdict, p.method)}")
        if p.evidence:
            lines.append(f"    {one_line(p.evidence)}")
        if p.note:
            lines.append(f"    note: {one_line(p.note)}")
        for h in problem_hunks(p):
            lines.append(f"    {h.status} hunk #{h.index}: {hunk_text(h)}")
            if h.near:
                lines.extend("      " + ln for ln in clean(h.near).rstrip("\n").split("\n"))
        pre = prereq_lines(p)
        if pre:
            lines.append("    prerequisites (upstream, nearest first):")
            lines.extend(f"      {x}" for x in pre)
    return clean("\n".join(lines)) + "\n"


def _testcase(suite: ET.Element, r: BugResult) -> str:
    """Add one <testcase>; return its outcome: pass | failure | error | skipped."""
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": f"patchcheck.{clean(r.tree.name)}",
            "name": r.bug.id,
            "time": "0",
        },
    )
    if r.verdict == Verdict.ERROR:
        el = ET.SubElement(case, "error", {"message": one_line(result_error(r)), "type": Verdict.ERROR})
        el.text = _details(r)
        return "error"
    if r.verdict == Verdict.NOT_APPLICABLE:
        ET.SubElement(case, "skipped", {"message": Verdict.NOT_APPLICABLE})
        return "skipped"
    if r.verdict in FINDING_VERDICTS:
        msg = f"{label(r.verdict, r.method)}: {one_line(r.bug.title)} [{r.bug.severity}]"
        el = ET.SubElement(case, "failure", {"message": msg, "type": r.verdict})
        el.text = _details(r)
        return "failure"
    if r.verdict != Verdict.PRESENT:
        # A verdict this renderer does not know is not a pass; report it as an error.
        el = ET.SubElement(case, "error", {"message": f"unknown verdict {r.verdict!r}", "type": clean(r.verdict)})
        el.text = _details(r)
        return "error"
    out = ET.SubElement(case, "system-out")
    out.text = _details(r)
    return "pass"


def _tree_suites(root: ET.Element, report: Report, totals: dict[str, int]) -> None:
    m = matrix(report)
    for t in m.trees:
        suite = ET.SubElement(root, "testsuite", {"name": clean(t.name)})
        props = ET.SubElement(suite, "properties")
        for key, val in (
            ("kind", t.kind),
            ("source", t.source),
            ("version", t.version),
            ("distro", t.distro),
            ("release", t.release),
            ("patchcheck", report.version),
        ):
            if val:
                ET.SubElement(props, "property", {"name": key, "value": clean(val)})
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for r in m.for_tree(t):
            outcome = _testcase(suite, r)
            counts["tests"] += 1
            if outcome != "pass":
                counts[_COUNTER[outcome]] += 1
        suite.set("timestamp", report.generated)
        suite.set("time", "0")
        for k, n in counts.items():
            suite.set(k, str(n))
            totals[k] += n


def _document(root: ET.Element, totals: dict[str, int]) -> str:
    for k, n in totals.items():
        root.set(k, str(n))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render(report: Report, options: RenderOptions) -> str:
    root = ET.Element("testsuites", {"name": "patchcheck"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    _tree_suites(root, report, totals)
    return _document(root, totals)


def _triage_suite(root: ET.Element, t: TriageReport, totals: dict[str, int]) -> None:
    """A suite "triage": a passing case per matching bug (score and why), or one skipped case."""
    o = t.oops
    suite = ET.SubElement(root, "testsuite", {"name": "triage", "timestamp": t.generated, "time": "0"})
    props = ET.SubElement(suite, "properties")
    for key, val in (
        ("headline", o.headline),
        ("function", o.function),
        ("release", o.release),
        ("command", o.comm),
        ("trace", " < ".join(o.trace)),
        ("patchcheck", t.version),
    ):
        if val:
            ET.SubElement(props, "property", {"name": key, "value": one_line(val)})
    skipped = 0
    for mt in t.matches:
        case = ET.SubElement(suite, "testcase", {"classname": "patchcheck.triage", "name": mt.bug, "time": "0"})
        b = t.bugs.get(mt.bug)
        title = f"{one_line(b.title)} [{b.severity}]\n" if b else ""
        ET.SubElement(case, "system-out").text = clean(f"{title}score {mt.score:.2f}: {mt.why}\n")
    if not t.matches:
        case = ET.SubElement(suite, "testcase", {"classname": "patchcheck.triage", "name": "match", "time": "0"})
        ET.SubElement(case, "skipped", {"message": f"no known bug matches (threshold {t.threshold:.2f})"})
        skipped = 1
    tests = max(1, len(t.matches))
    for k, n in (("tests", tests), ("failures", 0), ("errors", 0), ("skipped", skipped)):
        suite.set(k, str(n))
        totals[k] += n


def render_triage(t: TriageReport, options: RenderOptions) -> str:
    root = ET.Element("testsuites", {"name": "patchcheck"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    _triage_suite(root, t, totals)
    if t.check is not None:
        _tree_suites(root, t.check, totals)
    return _document(root, totals)
